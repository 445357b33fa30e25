/**
 * Per-principal rate limit on authenticated operations (counted after authentication, so the key is
 * the verified principal). A 429 on a key access is audited as a denied access. While Redis cannot
 * answer, each instance counts on its own (rate-limit-store.ts).
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import fastifyRateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import type { RedisClient } from '../cache/redis-connection.js'
import { KeywrapError } from '../errors.js'
import type { KeyService } from '../keys/key-service.js'
import type { Metrics } from '../metrics/metrics.js'
import { isKeyAccess } from '../operations.js'
import { callerOf } from './authentication.js'
import { failoverStore } from './rate-limit-store.js'

export interface RateLimitOptions {
  readonly max: number
  readonly windowSeconds: number
  /** Counters shared by the fleet in Redis, under the cache's key prefix; without them, each instance counts alone. */
  readonly shared: { readonly client: RedisClient; readonly keyPrefix: string } | undefined
  readonly keys: KeyService
  readonly metrics: Metrics
}

async function rateLimit(app: FastifyInstance, { max, windowSeconds, shared, keys, metrics }: RateLimitOptions): Promise<void> {
  await app.register(fastifyRateLimit, {
    max,
    timeWindow: windowSeconds * 1000,
    hook: 'preHandler',
    // Hashed, so that Redis key names do not list the service's callers.
    keyGenerator: (request) =>
      createHash('sha256').update(`${request.principal?.issuer}\0${request.principal?.id}`).digest('base64url').slice(0, 22),
    allowList: (request) => request.principal === undefined,
    skipOnError: true,
    ...(shared && { store: failoverStore(shared.client, `${shared.keyPrefix}rate:`, () => metrics.redisErrors.inc({ operation: 'rate-limit' })) }),
    errorResponseBuilder: (request, context) => {
      const refusal = new KeywrapError('rate_limited', `At most ${context.max} requests per ${windowSeconds} s for each caller.`, {
        retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)),
      })
      // Nothing is released on a 429, so the reply does not wait for the audit entry.
      const operation = request.routeOptions.config.operation
      const alias = (request.params as { alias?: string }).alias
      if (operation && isKeyAccess(operation) && alias) void keys.recordRefused(callerOf(request), alias, operation, refusal)
      return refusal
    },
  })
}

export default fp(rateLimit, { name: 'rate-limit' })
