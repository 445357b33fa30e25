/**
 * The simplest KMS plugin that does what the plugin's Decrypt must: the same v2 API on a unix socket,
 * a DEK cache (a Map), and before each answer an audit line (a JSON record with an HMAC fingerprint,
 * hash-chained with SHA-256) written to stdout, the lines of one event-loop turn in one write. No
 * policy, no key versions, no checkpoints, no metrics. Measured beside the plugin and the bare server
 * (bench/kms-plugin-cpu.ts) to see what any audited plugin costs on this machine.
 *
 *   node --import tsx bench/kms-plugin-minimal.ts SOCKET
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, randomBytes, randomUUID } from 'node:crypto'
import { Server, ServerCredentials } from '@grpc/grpc-js'
import { keyManagementServiceDefinition } from '../src/kms-plugin/kms-v2-api.js'

type Callback = (error: { code: number; details: string } | null, response?: unknown) => void
interface Call {
  request: { plaintext?: Buffer; ciphertext?: Buffer; uid: string; key_id?: string }
}

const socket = process.argv[2]!
const kek = randomBytes(32)
// A KeyObject, not a Buffer: on Node 24 an HMAC keyed by a Buffer takes a slow path (~14 % of this server's CPU).
const fingerprintKey = createSecretKey(randomBytes(32))
const keyId = `keywrap-v1-${createHash('sha256').update('minimal').digest('base64url')}`
const cache = new Map<string, Buffer>()
const chain = randomUUID()
let seq = 0
let lastHash = '0'.repeat(64)
let pending: { line: string; done: () => void }[] = []
let flushing: NodeJS.Immediate | undefined

function audit(operation: string, uid: string, wrappedKey: string, done: () => void): void {
  const record = {
    chain,
    seq: ++seq,
    time: new Date().toISOString(),
    operation,
    alias: 'kubernetes',
    principal: 'kube-apiserver@node',
    outcome: 'allowed',
    clientRequestId: uid,
    wrappedKeyFingerprint: createHmac('sha256', fingerprintKey).update(wrappedKey).digest('base64url').slice(0, 22),
    previousHash: lastHash,
  }
  const json = JSON.stringify(record)
  lastHash = createHash('sha256').update(json).digest('hex')
  pending.push({ line: `${json.slice(0, -1)},"hash":"${lastHash}"}\n`, done })
  flushing ??= setImmediate(() => {
    flushing = undefined
    const batch = pending
    pending = []
    process.stdout.write(batch.map((entry) => entry.line).join(''), () => batch.forEach((entry) => entry.done()))
  })
}

function wrap(dek: Buffer): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', kek, iv)
  const sealed = Buffer.concat([iv, cipher.update(dek), cipher.final(), cipher.getAuthTag()])
  return `kw1.1.${sealed.toString('base64url')}`
}

function unwrap(wrappedKey: string): Buffer {
  const sealed = Buffer.from(wrappedKey.slice('kw1.1.'.length), 'base64url')
  const decipher = createDecipheriv('aes-256-gcm', kek, sealed.subarray(0, 12))
  decipher.setAuthTag(sealed.subarray(sealed.length - 16))
  return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()])
}

const server = new Server()
server.addService(keyManagementServiceDefinition, {
  Status: (_call: Call, callback: Callback) => callback(null, { version: 'v2', healthz: 'ok', key_id: keyId }),
  Encrypt: (call: Call, callback: Callback) => {
    const wrappedKey = wrap(call.request.plaintext!)
    audit('wrap', call.request.uid, wrappedKey, () => callback(null, { ciphertext: Buffer.from(wrappedKey), key_id: keyId, annotations: {} }))
  },
  Decrypt: (call: Call, callback: Callback) => {
    const wrappedKey = call.request.ciphertext!.toString('latin1')
    if (call.request.key_id !== keyId || !wrappedKey.startsWith('kw1.1.')) return callback({ code: 3, details: 'unknown key_id or ciphertext' })
    let dek = cache.get(wrappedKey)
    if (!dek) {
      try {
        dek = unwrap(wrappedKey)
      } catch {
        return callback({ code: 3, details: 'cannot unwrap' })
      }
      cache.set(wrappedKey, dek)
    }
    const plaintext = dek
    audit('unwrap', call.request.uid, wrappedKey, () => callback(null, { plaintext }))
  },
})
server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) => {
  if (error) throw error
  process.stderr.write(`listening on unix://${socket}\n`)
})
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)))
