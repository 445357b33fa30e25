import { callerOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('generateDataKey', ({ keys }) => async (request) => {
  const result = await keys.generateDataKey(callerOf(request), request.params.alias, request.body)
  return {
    wrappedKey: result.wrappedKey,
    keyVersion: result.keyVersion,
    ...(result.plaintext && { plaintext: result.plaintext.toString('base64') }),
  }
})
