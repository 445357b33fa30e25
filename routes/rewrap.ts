import { rewrapPayload, toWrappedKeyInput } from './key-payloads.js'
import { callerOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('rewrap', ({ keys }) => async (request) => {
  const result = await keys.rewrap(callerOf(request), request.params.alias, toWrappedKeyInput(request.body))
  return rewrapPayload(result)
})
