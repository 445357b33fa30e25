import type { AliasParams } from './key-payloads.js'
import { defineRoute, principalOf } from './route.js'

export default defineRoute({
  operationId: 'getKey',
  async handle(request, _reply, { keys }) {
    const { alias } = request.params as AliasParams
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
  },
})
