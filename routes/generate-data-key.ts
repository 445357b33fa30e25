import type { DataKeySize } from '../src/crypto/data-key.js'
import type { EncryptionContext } from '../src/crypto/context.js'
import type { AliasParams } from './key-payloads.js'
import { callerOf, defineRoute } from './route.js'

interface Body {
  context?: EncryptionContext
  includePlaintext: boolean
  bytes: DataKeySize
}

export default defineRoute({
  operationId: 'generateDataKey',
  async handle(request, _reply, { keys }) {
    const { alias } = request.params as AliasParams
    const body = request.body as Body
    const result = await keys.generateDataKey(callerOf(request), alias, body)
    return {
      wrappedKey: result.wrappedKey,
      keyVersion: result.keyVersion,
      ...(result.plaintext && { plaintext: result.plaintext.toString('base64') }),
    }
  },
})
