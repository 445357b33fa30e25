import { rewrapPayload, toWrappedKeyInput, type AliasParams, type WrappedKeyBody } from './key-payloads.js'
import { callerOf, defineRoute } from './route.js'

export default defineRoute({
  operationId: 'rewrap',
  async handle(request, _reply, { keys }) {
    const { alias } = request.params as AliasParams
    const result = await keys.rewrap(callerOf(request), alias, toWrappedKeyInput(request.body as WrappedKeyBody))
    return rewrapPayload(result)
  },
})
