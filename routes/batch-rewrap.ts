import { batchInputs, batchResult, rewrapPayload } from './key-payloads.js'
import { callerOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('batchRewrap', ({ keys, batchItem }) => async (request) => {
  const results = await keys.batchRewrap(callerOf(request), request.params.alias, batchInputs(request.body.items, batchItem))
  return { results: results.map((result) => batchResult(request, result, rewrapPayload)) }
})
