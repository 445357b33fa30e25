/**
 * The rate limit's counters: in Redis, shared by the fleet, and in this process while Redis cannot
 * answer. @fastify/rate-limit's own Redis store waits out the command timeout on every request when
 * Redis hangs, then skips the limit; behind a circuit breaker, a few requests pay the timeout and the
 * others are counted here at once, so the limit still holds (per instance) and requests stay fast.
 */
import { createRequire } from 'node:module'
import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { RedisClient } from '../cache/redis-connection.js'
import { CircuitBreaker } from '../cache/circuit-breaker.js'

interface Counted {
  current: number
  ttl: number
}

/** The store interface @fastify/rate-limit calls (store/LocalStore.js and store/RedisStore.js). */
export interface CounterStore {
  incr(key: string, callback: (error: Error | null, result: Counted | null) => void, timeWindow: number, max: number): void
  child(routeOptions: unknown): CounterStore
}

interface StoreParams {
  readonly continueExceeding: boolean
  readonly exponentialBackoff: boolean
}

// The plugin's own stores (CommonJS, untyped): the Redis one runs its Lua script, the local one an LRU.
const require = createRequire(import.meta.url)
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as new (
  continueExceeding: boolean,
  exponentialBackoff: boolean,
  redis: RedisClient,
  nameSpace: string,
) => CounterStore
const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as new (continueExceeding: boolean, exponentialBackoff: boolean) => CounterStore

class FailoverCounters implements CounterStore {
  constructor(
    private readonly shared: CounterStore,
    private readonly local: CounterStore,
    private readonly breaker: CircuitBreaker,
    private readonly onRedisError: () => void,
  ) {}

  incr(key: string, callback: (error: Error | null, result: Counted | null) => void, timeWindow: number, max: number): void {
    if (!this.breaker.allows()) return this.local.incr(key, callback, timeWindow, max)
    this.shared.incr(
      key,
      (error, result) => {
        if (!error) {
          this.breaker.succeeded()
          return callback(null, result)
        }
        this.breaker.failed()
        this.onRedisError()
        this.local.incr(key, callback, timeWindow, max)
      },
      timeWindow,
      max,
    )
  }

  child(routeOptions: unknown): CounterStore {
    return new FailoverCounters(this.shared.child(routeOptions), this.local.child(routeOptions), this.breaker, this.onRedisError)
  }
}

/** A store class for @fastify/rate-limit's `store` option: Redis first, this process while Redis fails. */
export function failoverStore(
  redis: RedisClient,
  nameSpace: string,
  onRedisError: () => void,
  breaker: CircuitBreaker = new CircuitBreaker(),
): FastifyRateLimitStoreCtor {
  const store = class extends FailoverCounters {
    constructor(params: StoreParams) {
      super(new RedisStore(params.continueExceeding, params.exponentialBackoff, redis, nameSpace), new LocalStore(params.continueExceeding, params.exponentialBackoff), breaker, onRedisError)
    }
  }
  // The published types leave out the timeWindow and max the plugin passes to incr() (its index.js).
  return store as unknown as FastifyRateLimitStoreCtor
}
