import { toWrappedKeyInput, unwrapPayload, type AliasParams, type WrappedKeyBody } from './key-payloads.js'
import { callerOf, defineRoute } from './route.js'

export default defineRoute({
  operationId: 'unwrap',
  async handle(request, _reply, { keys }) {
    const { alias } = request.params as AliasParams
    const result = await keys.unwrap(callerOf(request), alias, toWrappedKeyInput(request.body as WrappedKeyBody))
    return unwrapPayload(result)
  },
})
