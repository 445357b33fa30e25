/**
 * Per-principal rate limit on authenticated operations, counted after authentication (the key is the
 * verified principal) and after validation: each request is charged its cost in the operations
 * catalogue, a batch as many as its items. A request whose cost does not fit in what is left of the
 * caller's budget is refused whole (429, nothing done); on a key access the refusal is audited once,
 * with the number of items refused. While Redis cannot answer, each instance counts on its own.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { RedisClient } from '../cache/redis-connection.js'
import { KeywrapError } from '../errors.js'
import type { KeyService } from '../keys/key-service.js'
import type { Metrics } from '../metrics/metrics.js'
import { isKeyAccess, type AuthenticatedEntry } from '../operations.js'
import { callerOf } from './authentication.js'
import { FailoverCounters, LocalCounters, RedisCounters, type CostCounters } from './rate-limit-counters.js'
import { sendProblem } from './problem-replies.js'
import { hookAuthenticatedRoutes } from './authenticated-routes.js'

export interface RateLimitOptions {
  readonly max: number
  readonly windowSeconds: number
  /** Counters shared by the fleet in Redis, under the cache's key prefix; without them, each instance counts alone. */
  readonly shared: { readonly client: RedisClient; readonly keyPrefix: string } | undefined
  readonly keys: KeyService
  readonly metrics: Metrics
}

/** What the request costs: 1, or the items of a batch (at least 1). */
export function costOf(operation: AuthenticatedEntry, body: unknown): number {
  if (operation.cost === 1) return 1
  const items = (body as { items?: unknown } | undefined)?.items
  return Array.isArray(items) ? Math.max(1, items.length) : 1
}

function counterKey(request: FastifyRequest): string {
  // Hashed, so that Redis key names do not list the service's callers.
  return createHash('sha256').update(`${request.principal?.issuer}\0${request.principal?.id}`).digest('base64url').slice(0, 22)
}

function rateLimit(app: FastifyInstance, { max, windowSeconds, shared, keys, metrics }: RateLimitOptions, done: () => void): void {
  const local = new LocalCounters()
  const counters: CostCounters = shared
    ? new FailoverCounters(new RedisCounters(shared.client, `${shared.keyPrefix}rate:`), local, () => metrics.redisErrors.inc({ operation: 'rate-limit' }))
    : local
  const windowMs = windowSeconds * 1000

  const limit: preHandlerHookHandler = (request, reply, hookDone) => {
    const operation = request.routeOptions.config.operation
    if (!operation?.authenticates || request.principal === undefined) return hookDone()
    const cost = costOf(operation, request.body)
    counters.charge(counterKey(request), cost, max, windowMs).then(({ allowed, resetMs }) => {
      if (allowed) return hookDone()
      const items = operation.cost === 'items' ? ` This batch of ${cost} items costs ${cost}.` : ''
      const refusal = new KeywrapError('rate_limited', `At most ${max} key accesses per ${windowSeconds} s for each caller.${items}`, {
        retryAfterSeconds: Math.max(1, Math.ceil(resetMs / 1000)),
      })
      const alias = (request.params as { alias?: string }).alias
      // Nothing is released on a 429, so the reply does not wait for the audit entry.
      if (isKeyAccess(operation) && alias) void keys.recordRefused(callerOf(request), alias, operation, refusal, operation.cost === 'items' ? cost : undefined)
      sendProblem(request, reply, refusal)
    }, hookDone)
  }
  hookAuthenticatedRoutes(app, 'preHandler', limit)
  done()
}

export default fp(rateLimit, { name: 'rate-limit' })
