import { principalOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('getKey', ({ keys }) => async (request) => {
  const { alias } = request.params
  const description = keys.describeKey(principalOf(request), alias)
  return {
    alias,
    provider: description.provider,
    uri: description.uri,
    primaryVersion: description.primaryVersion,
    versions: description.versions,
    ...(description.attributes && { attributes: description.attributes }),
    refreshedAt: description.refreshedAt,
  }
})
