/**
 * The rate limit's counters, charged by cost (a batch costs its items): in Redis, shared by the fleet,
 * and in this process while Redis cannot answer. A charge that would take a counter past its limit is
 * refused and charges nothing, so a batch larger than the remaining budget is refused whole. Behind a
 * circuit breaker, a few requests pay Redis's command timeout and the others are counted here at once,
 * so the limit still holds (per instance) and requests stay fast.
 */
import { LRUCache } from 'lru-cache'
import type { RedisClient } from '../cache/redis-connection.js'
import { CircuitBreaker } from '../cache/circuit-breaker.js'

export interface Charge {
  /** Whether the cost fitted in the budget (and was charged). */
  readonly allowed: boolean
  /** What the window has counted so far, this charge included when allowed. */
  readonly used: number
  /** Milliseconds until the window resets. */
  readonly resetMs: number
}

export interface CostCounters {
  charge(key: string, cost: number, max: number, windowMs: number): Promise<Charge>
}

/** Counters of this process; the least recently charged are forgotten past `maxKeys`. */
export class LocalCounters implements CostCounters {
  private readonly windows: LRUCache<string, { used: number; resetAt: number }>

  constructor(maxKeys = 100_000) {
    this.windows = new LRUCache({ max: maxKeys })
  }

  charge(key: string, cost: number, max: number, windowMs: number): Promise<Charge> {
    const now = Date.now()
    let window = this.windows.get(key)
    if (!window || window.resetAt <= now) {
      window = { used: 0, resetAt: now + windowMs }
      this.windows.set(key, window)
    }
    const allowed = window.used + cost <= max
    if (allowed) window.used += cost
    return Promise.resolve({ allowed, used: window.used, resetMs: window.resetAt - now })
  }
}

// Refuse without charging when the cost does not fit; the window starts with its first charge.
const CHARGE_SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if used + cost > tonumber(ARGV[2]) then return {0, used, redis.call('PTTL', KEYS[1])} end
used = redis.call('INCRBY', KEYS[1], cost)
if used == cost then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, used, redis.call('PTTL', KEYS[1])}`

export class RedisCounters implements CostCounters {
  constructor(
    private readonly redis: RedisClient,
    private readonly nameSpace: string,
  ) {}

  async charge(key: string, cost: number, max: number, windowMs: number): Promise<Charge> {
    const [allowed, used, ttl] = (await this.redis.eval(CHARGE_SCRIPT, 1, `${this.nameSpace}${key}`, cost, max, windowMs)) as [number, number, number]
    return { allowed: allowed === 1, used, resetMs: ttl > 0 ? ttl : windowMs }
  }
}

/** Redis first; this process while Redis fails (behind the breaker). */
export class FailoverCounters implements CostCounters {
  constructor(
    private readonly shared: CostCounters,
    private readonly local: CostCounters,
    private readonly onRedisError: () => void,
    private readonly breaker: CircuitBreaker = new CircuitBreaker(),
  ) {}

  async charge(key: string, cost: number, max: number, windowMs: number): Promise<Charge> {
    if (!this.breaker.allows()) return this.local.charge(key, cost, max, windowMs)
    try {
      const charged = await this.shared.charge(key, cost, max, windowMs)
      this.breaker.succeeded()
      return charged
    } catch {
      this.breaker.failed()
      this.onRedisError()
      return this.local.charge(key, cost, max, windowMs)
    }
  }
}
