import { batchInputs, batchResult, unwrapPayload } from './key-payloads.js'
import { callerOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('batchUnwrap', ({ keys, batchItem }) => async (request) => {
  const results = await keys.batchUnwrap(callerOf(request), request.params.alias, batchInputs(request.body.items, batchItem))
  return { results: results.map((result) => batchResult(request, result, unwrapPayload)) }
})
