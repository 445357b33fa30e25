import { defineRoute } from './route.js'

/**
 * Ready when every provider's last metadata refresh succeeded and the audit trail is being written;
 * calls no provider, unless `deep=true` asks for a real round trip through each (rate-limited by the
 * providers themselves).
 */
export default defineRoute('getReadiness', ({ registry, cache, audit }) => async (request, reply) => {
  const statuses = registry.status()
  const probes = request.query?.deep === 'true' ? await registry.probeAll() : new Map<string, boolean>()
  const providers = statuses.map((status) => ({
    alias: status.alias,
    ready: status.ready && probes.get(status.alias) !== false,
    ...(status.refreshedAt && { refreshedAt: status.refreshedAt }),
  }))
  const auditOk = audit.healthy?.() !== false
  const ready = auditOk && providers.every((provider) => provider.ready)
  reply.code(ready ? 200 : 503)
  return { status: ready ? 'ready' : 'not_ready', providers, cache: cache.status(), audit: auditOk ? 'ok' : 'failing' }
})
