import { decodeKeyBytes } from './key-payloads.js'
import { callerOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('wrap', ({ keys }) => async (request) => {
  const { plaintext: text, context } = request.body
  const plaintext = decodeKeyBytes(text, '/body/plaintext')
  return keys.wrap(callerOf(request), request.params.alias, context === undefined ? { plaintext } : { plaintext, context })
})
