import type { AliasParams } from './key-payloads.js'
import { callerOf, defineRoute } from './route.js'

export default defineRoute({
  operationId: 'purgeCache',
  async handle(request, _reply, { keys }) {
    const { alias } = request.params as AliasParams
    await keys.purgeCache(callerOf(request), alias)
    return { alias, purged: true }
  },
})
