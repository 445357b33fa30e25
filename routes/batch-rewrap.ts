import { batchItem, rewrapPayload, toWrappedKeyInput, type AliasParams, type WrappedKeyBody } from './key-payloads.js'
import { callerOf, defineRoute } from './route.js'

export default defineRoute({
  operationId: 'batchRewrap',
  authenticated: true,
  async handle(request, _reply, { keys }) {
    const { alias } = request.params as AliasParams
    const { items } = request.body as { items: WrappedKeyBody[] }
    const results = await keys.batchRewrap(callerOf(request), alias, items.map(toWrappedKeyInput))
    return { results: results.map((result) => batchItem(request, result, rewrapPayload)) }
  },
})
