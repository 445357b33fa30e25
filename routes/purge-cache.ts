import { callerOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('purgeCache', ({ keys }) => async (request) => {
  const { alias } = request.params
  await keys.purgeCache(callerOf(request), alias)
  return { alias, purged: true }
})
