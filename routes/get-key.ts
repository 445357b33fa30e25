import { callerOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('getKey', ({ keys, registry }) => async (request) => {
  const { alias } = request.params
  const description = keys.describeKey(callerOf(request), alias)
  return {
    alias,
    ready: registry.isReady(alias),
    provider: description.provider,
    uri: description.uri,
    primaryVersion: description.primaryVersion,
    versions: description.versions.map((version) => ({ ...version, ...keys.versionUse(alias, version.version) })),
    usesSince: keys.usesSince,
    ...(description.attributes && { attributes: description.attributes }),
    refreshedAt: description.refreshedAt,
  }
})
