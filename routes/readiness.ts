import { defineRoute } from './route.js'

/** Ready when every provider's last metadata refresh succeeded; calls no provider itself. */
export default defineRoute({
  operationId: 'getReadiness',
  authenticated: false,
  async handle(_request, reply, { registry, cache }) {
    const providers = registry.status().map((status) => ({
      alias: status.alias,
      ready: status.ready,
      ...(status.refreshedAt && { refreshedAt: status.refreshedAt }),
    }))
    const ready = providers.every((provider) => provider.ready)
    reply.code(ready ? 200 : 503)
    return { status: ready ? 'ready' : 'not_ready', providers, cache: cache.status() }
  },
})
