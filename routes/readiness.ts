import { defineRoute } from './route.js'

/**
 * Ready when every provider's last metadata refresh succeeded and the audit trail is being written;
 * calls no provider, unless `deep=true` asks for a real round trip through each (rate-limited by the
 * providers themselves). Anonymous, so it counts keys without naming them.
 */
export default defineRoute('getReadiness', ({ registry, cache, audit }) => async (request, reply) => {
  const probes = request.query?.deep === 'true' ? await registry.probeAll() : new Map<string, boolean>()
  const statuses = registry.status()
  const notReady = statuses.filter((status) => !status.ready || probes.get(status.alias) === false).length
  const auditOk = audit.healthy?.() !== false
  const ready = auditOk && notReady === 0
  reply.code(ready ? 200 : 503)
  const cacheStatus = cache.status()
  const cacheReason = cacheStatus === 'degraded' ? cache.degradedReason?.() : undefined
  return {
    status: ready ? 'ready' : 'not_ready',
    keys: { total: statuses.length, notReady },
    cache: cacheStatus,
    ...(cacheReason && { cacheReason }),
    audit: auditOk ? 'ok' : 'failing',
  }
})
