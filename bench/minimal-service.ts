/**
 * The simplest keywrap that serves the bench's two target rows: Fastify, a JSON-schema'd body, a
 * bearer token verified with jose against the development issuer (verified tokens cached until they
 * expire), an LRU of DEKs, AES-256-GCM under a KEK of its own, and before each answer an audit line (a
 * JSON record with an HMAC fingerprint of the wrapped key, hash-chained with SHA-256) written to
 * stdout, the lines of one event-loop turn in one write. No grants beyond one principal, no context,
 * key versions, Redis, checkpoints, metrics or rate limit. Measured beside keywrap and the bare
 * route (bench/http-cpu.ts) to see what any audited key service costs on this machine.
 *
 *   KEYWRAP_HOME=DIR node --import tsx bench/minimal-service.ts    (the home of the dev issuer)
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, randomBytes, randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { jwtVerify } from 'jose'
import { LRUCache } from 'lru-cache'
import { loadDevIssuer } from '../src/auth/dev-issuer.js'
import { DEV_ISSUER } from '../src/config/config.js'

const issuer = await loadDevIssuer(process.env.KEYWRAP_HOME!)
const kek = createSecretKey(randomBytes(32))
const fingerprintKey = createSecretKey(randomBytes(32))
const KEY_VERSION = 'local://default/versions/1'
const deks = new LRUCache<string, Buffer>({ max: 100_000 })
const tokens = new Map<string, { sub: string; exp: number }>()

async function principalOf(authorization: string | undefined): Promise<string | undefined> {
  if (!authorization?.startsWith('Bearer ')) return undefined
  const token = authorization.slice(7)
  const cached = tokens.get(token)
  if (cached && cached.exp > Date.now() / 1000) return cached.sub
  try {
    const { payload } = await jwtVerify(token, issuer.publicKey, { issuer: DEV_ISSUER, audience: 'keywrap', algorithms: ['EdDSA'] })
    tokens.set(token, { sub: payload.sub!, exp: payload.exp! })
    return payload.sub
  } catch {
    return undefined
  }
}

const chain = randomUUID()
let seq = 0
let lastHash = '0'.repeat(64)
let pending: { line: string; done: () => void }[] = []
let flushing: NodeJS.Immediate | undefined

function audit(entry: Record<string, unknown>): Promise<void> {
  const json = JSON.stringify({ chain, seq: ++seq, time: new Date().toISOString(), ...entry, previousHash: lastHash })
  lastHash = createHash('sha256').update(json).digest('hex')
  return new Promise((done) => {
    pending.push({ line: `${json.slice(0, -1)},"hash":"${lastHash}"}\n`, done })
    flushing ??= setImmediate(() => {
      flushing = undefined
      const batch = pending
      pending = []
      process.stdout.write(batch.map((item) => item.line).join(''), () => batch.forEach((item) => item.done()))
    })
  })
}

const fingerprint = (wrappedKey: string) => createHmac('sha256', fingerprintKey).update(wrappedKey).digest('base64url').slice(0, 22)

function wrap(dek: Buffer): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', kek, iv)
  return `kw1.1.${Buffer.concat([iv, cipher.update(dek), cipher.final(), cipher.getAuthTag()]).toString('base64url')}`
}

function unwrap(wrappedKey: string): Buffer {
  const sealed = Buffer.from(wrappedKey.slice(6), 'base64url')
  const decipher = createDecipheriv('aes-256-gcm', kek, sealed.subarray(0, 12))
  decipher.setAuthTag(sealed.subarray(sealed.length - 16))
  return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()])
}

const app = Fastify({ logger: false })
const bodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { wrappedKey: { type: 'string', pattern: '^kw1\\.[0-9]+\\.[A-Za-z0-9_-]+$', maxLength: 4096 }, includePlaintext: { type: 'boolean' } },
}
app.get('/readyz', async () => ({ status: 'ready' }))
app.post<{ Params: { alias: string }; Body: { wrappedKey?: string } }>('/v1/keys/:alias', { schema: { body: bodySchema } }, async (request, reply) => {
  const principal = await principalOf(request.headers.authorization)
  if (principal !== 'bench') return reply.code(401).send({ title: 'unauthenticated' })
  const [alias, operation] = request.params.alias.split(':')
  const base = { requestId: randomUUID(), principal, alias, keyVersion: KEY_VERSION, remoteAddress: request.ip, userAgent: request.headers['user-agent'] }
  if (operation === 'generateDataKey') {
    const dek = randomBytes(32)
    const wrappedKey = wrap(dek)
    deks.set(wrappedKey, dek)
    await audit({ ...base, operation: 'generateDataKey', outcome: 'allowed', wrappedKeyFingerprint: fingerprint(wrappedKey) })
    return { plaintext: dek.toString('base64'), wrappedKey, keyVersion: KEY_VERSION }
  }
  const wrappedKey = request.body.wrappedKey
  if (operation !== 'unwrap' || wrappedKey === undefined) return reply.code(400).send({ title: 'invalid_request' })
  let dek = deks.get(wrappedKey)
  const cacheLevel = dek ? 'l1' : 'miss'
  try {
    dek ??= unwrap(wrappedKey)
  } catch {
    await audit({ ...base, operation: 'unwrap', outcome: 'failed', wrappedKeyFingerprint: fingerprint(wrappedKey) })
    return reply.code(422).send({ title: 'cannot_unwrap' })
  }
  deks.set(wrappedKey, dek)
  await audit({ ...base, operation: 'unwrap', outcome: 'allowed', cacheLevel, wrappedKeyFingerprint: fingerprint(wrappedKey) })
  return { plaintext: dek.toString('base64'), keyVersion: KEY_VERSION, primary: true }
})
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
process.stderr.write(`listening on http://localhost:${typeof address === 'object' && address ? address.port : 0}\n`)
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
