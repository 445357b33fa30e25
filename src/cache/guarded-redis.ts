/**
 * Redis commands for the shared cache, each through a circuit breaker and within a deadline. Redis
 * trouble never fails a call: an error or timeout is counted and comes back as `ok: false`, and after
 * consecutive failures the breaker stops trying for a while.
 */
import { once } from 'node:events'
import { setTimeout } from 'node:timers/promises'
import { Cluster } from 'ioredis'
import type { Metrics } from '../metrics/metrics.js'
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js'
import { DEFAULT_COMMAND_TIMEOUT_MS, type RedisClient } from './redis-connection.js'

export type Outcome<T> = { ok: true; value: T } | { ok: false }

export class GuardedRedis {
  private readonly breaker: CircuitBreaker
  /**
   * How long a command may take from the moment it is issued: the client's own commandTimeout starts
   * only when a command is sent, and an auto-pipelined command can first wait for the pipeline ahead.
   */
  private readonly commandTimeoutMs: number
  private everReady: boolean
  private closed = false

  constructor(
    private readonly redis: RedisClient,
    private readonly options: { readonly metrics?: Metrics; readonly breaker?: CircuitBreakerOptions; readonly now: () => number },
  ) {
    this.breaker = new CircuitBreaker({ now: options.now, ...options.breaker })
    this.commandTimeoutMs = commandTimeoutOf(redis)
    redis.on('error', () => options.metrics?.redisErrors.inc({ operation: 'connection' }))
    redis.on('ready', () => (this.everReady = true))
    this.everReady = redis.status === 'ready'
  }

  /** Runs one command; an error or timeout is counted under `operation` and becomes `ok: false`. */
  async run<T>(operation: string, command: (redis: RedisClient) => Promise<T>): Promise<Outcome<T>> {
    if (this.closed || !this.breaker.allows()) return { ok: false }
    if (this.redis.status !== 'ready') {
      // Before the first connection is up, not yet a failure; after, a lost connection is one.
      if (this.everReady) this.failed(operation)
      else this.breaker.released()
      return { ok: false }
    }
    try {
      const value = await withDeadline(command(this.redis), this.commandTimeoutMs)
      this.breaker.succeeded()
      return { ok: true, value }
    } catch {
      this.failed(operation)
      return { ok: false }
    }
  }

  /** Connected, and the breaker lets commands through. */
  healthy(): boolean {
    return !this.closed && this.redis.status === 'ready' && this.breaker.state() === 'closed'
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.redis.status === 'ready') {
      const ended = once(this.redis, 'end')
      try {
        await this.redis.quit()
        await Promise.race([ended, setTimeout(1000, undefined, { ref: false })])
        return
      } catch {
        // fall through: drop the connection instead
      }
    }
    this.redis.disconnect()
  }

  private failed(operation: string): void {
    this.breaker.failed()
    this.options.metrics?.redisErrors.inc({ operation })
  }
}

/** The client's commandTimeout (set on each node of a Cluster). */
function commandTimeoutOf(redis: RedisClient): number {
  const options = redis instanceof Cluster ? redis.options.redisOptions : redis.options
  return options?.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS
}

/** `promise`, or a rejection once `ms` have passed since the call. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_resolve, reject) => {
    timer = globalThis.setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms.`)), ms)
  })
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
}
