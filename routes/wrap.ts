import type { EncryptionContext } from '../src/crypto/context.js'
import { decodeKeyBytes, type AliasParams } from './key-payloads.js'
import { callerOf, defineRoute } from './route.js'

const MAX_KEY_BYTES = 64

export default defineRoute({
  operationId: 'wrap',
  async handle(request, _reply, { keys }) {
    const { alias } = request.params as AliasParams
    const body = request.body as { plaintext: string; context?: EncryptionContext }
    const plaintext = decodeKeyBytes(body.plaintext, '/body/plaintext', MAX_KEY_BYTES)
    return keys.wrap(callerOf(request), alias, body.context === undefined ? { plaintext } : { plaintext, context: body.context })
  },
})
