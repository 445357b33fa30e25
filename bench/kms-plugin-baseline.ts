/**
 * The KMS plugin's floor: a bare gRPC server of v2.KeyManagementService from the same .proto, on a
 * unix socket, answering the three calls at once with replies of the plugin's sizes (no key, cache,
 * policy or audit).
 */
import { Server, ServerCredentials } from '@grpc/grpc-js'
import { keyManagementServiceDefinition } from '../src/kms-plugin/kms-v2-api.js'

const socket = process.argv[2]!
const plaintext = Buffer.alloc(32, 1)
const ciphertext = Buffer.from(`kw1.1.${Buffer.alloc(64, 2).toString('base64url')}`)
const keyId = `keywrap-v1-${Buffer.alloc(32, 3).toString('base64url')}`
const annotations = { 'version.kms.keywrap.dev': Buffer.from('1') }
const server = new Server()
server.addService(keyManagementServiceDefinition, {
  Status: (_call: unknown, callback: (error: null, response: unknown) => void) => callback(null, { version: 'v2', healthz: 'ok', key_id: keyId }),
  Encrypt: (_call: unknown, callback: (error: null, response: unknown) => void) => callback(null, { ciphertext, key_id: keyId, annotations }),
  Decrypt: (_call: unknown, callback: (error: null, response: unknown) => void) => callback(null, { plaintext }),
})
server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) => {
  if (error) throw error
  process.stderr.write(`listening on unix://${socket}\n`)
})
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)))
