import { toWrappedKeyInput, unwrapPayload } from './key-payloads.js'
import { callerOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('unwrap', ({ keys }) => async (request) => {
  const result = await keys.unwrap(callerOf(request), request.params.alias, toWrappedKeyInput(request.body))
  return unwrapPayload(result)
})
