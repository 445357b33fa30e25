import { batchInputs, batchResult, rewrapPayload, type AliasParams } from './key-payloads.js'
import { callerOf, defineRoute } from './route.js'

export default defineRoute({
  operationId: 'batchRewrap',
  async handle(request, _reply, { keys, batchItem }) {
    const { alias } = request.params as AliasParams
    const results = await keys.batchRewrap(callerOf(request), alias, batchInputs(request.body, batchItem))
    return { results: results.map((result) => batchResult(request, result, rewrapPayload)) }
  },
})
