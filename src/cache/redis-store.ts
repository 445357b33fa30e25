/**
 * L2: DEKs shared by every instance through Redis, sealed so that Redis holds nothing useful to a
 * thief (see cache-crypto). Its keys, each with a TTL, each used by single-key commands only
 * (epoch-secrets.ts, generations.ts, sealed-entries.ts; every command through guarded-redis.ts):
 *
 *   <prefix>epoch:<kek>:<n>  the epoch's secret wrapped by the KEK (<kek>: a digest of   TTL 2 epochs
 *                            its identity); created with SET NX
 *   <prefix>gen:<mac>        the alias's generation: a counter and a random token, MAC'd; TTL 2 epochs
 *                            a purge moves it forward (compare-and-set)
 *   <prefix>dek:<mac>        one sealed DEK                                            TTL ttlSeconds
 *
 * No hash tag: every command touches one key, so on a Cluster each key may live on any node, and the
 * entries spread over all of them.
 *
 * Revocation. An entry's name mixes in the alias's generation, which each instance re-reads from Redis
 * at most `generationMemoMs` after it last did (and the epoch record with it, so instances never keep
 * diverging secrets). A purge replaces the generation, so it reaches every instance within
 * `generationMemoMs` (1 s by default) — L1 too, as the tiered cache stamps L1 entries with it.
 * An instance that cannot reach Redis keeps trusting what it last read for `offlineGraceMs` (30 s by
 * default) and then drops to misses: that is the purge bound for an instance cut off from Redis.
 *
 * Redis trouble never fails a call: errors and timeouts are counted and read as misses, and a circuit
 * breaker stops trying for a while after consecutive failures. Only purge reports failure, since a
 * purge that did not reach the fleet must not look done.
 *
 * When Redis answers but the cache KEK gives no epoch secret (it refuses the record: another KEK's
 * under the same name, a disabled version; or its provider fails), this instance cannot take part in
 * L2, and a purge elsewhere cannot reach it: L1 serves alone, each entry for at most `offlineGraceMs`,
 * the same bound as for an instance cut off from Redis.
 */
import { KeywrapError } from '../errors.js'
import type { Metrics } from '../metrics/metrics.js'
import type { KeyProvider } from '../providers/key-provider.js'
import type { Logger } from '../support/logger.js'
import type { CircuitBreakerOptions } from './circuit-breaker.js'
import type { CacheDegradedReason } from './dek-cache.js'
import { EpochSecrets } from './epoch-secrets.js'
import { Generations } from './generations.js'
import { GuardedRedis } from './guarded-redis.js'
import type { RedisClient } from './redis-connection.js'
import { SealedEntries, type SealedEntriesOptions } from './sealed-entries.js'
import type { LocalOnly, SharedDekStore } from './tiered-cache.js'

export interface RedisDekStoreOptions {
  readonly redis: RedisClient
  /** The KEK that wraps each epoch's secret: a provider from the registry, ideally of a dedicated alias. */
  readonly kek: KeyProvider
  /** The KEK's alias (KEYWRAP_CACHE_KEK_ALIAS), named in the operator's messages. */
  readonly kekAlias?: string
  readonly metrics?: Metrics
  /** Where the operator learns of a cache KEK that cannot open the epoch secret, or of a refused generation. */
  readonly logger?: Logger
  /** Prefix of every Redis key (KEYWRAP_REDIS_KEY_PREFIX). */
  readonly keyPrefix: string
  /** Lifetime of an entry; default 600. */
  readonly ttlSeconds?: number
  /** Length of an epoch of cache keys; default 86400. */
  readonly epochSeconds?: number
  /** How long what was read from Redis (generation, epoch record) is trusted; the purge bound; default 1000. */
  readonly generationMemoMs?: number
  /** How long, while Redis cannot be reached, the last reading still vouches for L1 entries; default 30000. */
  readonly offlineGraceMs?: number
  /** Clock difference between instances that a purge covers around an epoch boundary; default 30000. */
  readonly maxClockSkewMs?: number
  /** After the KEK failed for an epoch's secret, how long before trying it again; default 5000. */
  readonly providerRetryMs?: number
  /** Default: open after 5 consecutive failures, for 2000 ms. */
  readonly breaker?: CircuitBreakerOptions
  /** Wall clock in milliseconds (epochs, expiry, memos); default Date.now. */
  readonly now?: () => number
}

export class RedisDekStore implements SharedDekStore {
  readonly ttlMs: number
  private readonly skewMs: number
  private readonly now: () => number
  private readonly redis: GuardedRedis
  private readonly epochs: EpochSecrets
  private readonly generations: Generations
  private readonly entryOptions: SealedEntriesOptions
  private readonly localOnly: LocalOnly

  constructor(options: RedisDekStoreOptions) {
    const prefix = options.keyPrefix
    const now = (this.now = options.now ?? Date.now)
    const { metrics, logger, kekAlias } = options
    this.ttlMs = Math.ceil((options.ttlSeconds ?? 600) * 1000)
    const epochMs = (options.epochSeconds ?? 86_400) * 1000
    if (!(this.ttlMs > 0) || !(epochMs > 0)) throw new Error('The Redis cache needs a positive TTL and epoch length.')
    const memoMs = options.generationMemoMs ?? 1000
    const graceMs = Math.max(options.offlineGraceMs ?? 30_000, memoMs)
    this.skewMs = options.maxClockSkewMs ?? 30_000
    this.redis = new GuardedRedis(options.redis, { now, ...(metrics && { metrics }), ...(options.breaker && { breaker: options.breaker }) })
    const providerRetryMs = options.providerRetryMs ?? 5000
    const observers = { ...(metrics && { metrics }), ...(logger && { logger }) }
    this.epochs = new EpochSecrets(this.redis, options.kek, {
      prefix,
      epochMs,
      memoMs,
      graceMs,
      providerRetryMs,
      now,
      ...observers,
      ...(kekAlias && { kekAlias }),
    })
    this.generations = new Generations(this.redis, { prefix, memoMs, graceMs, recordTtlMs: this.epochs.recordTtlMs(), now, ...observers })
    this.localOnly = { localOnly: true, maxAgeMs: graceMs }
    this.entryOptions = { prefix, ttlMs: this.ttlMs, now, ...(metrics && { metrics }) }
  }

  /** The alias's entries in the scope they are named in now; undefined when it cannot be known; LocalOnly when only the epoch secret is missing. */
  async entries(alias: string): Promise<SealedEntries | LocalOnly | undefined> {
    const reading = await this.epochs.read(this.epochs.epochOf(this.now()), { create: true })
    if (reading.kind === 'unavailable' && reading.cause === 'epoch_secret') return this.localOnly
    if (reading.kind !== 'found') return undefined
    const found = await this.generations.scope(reading.state, alias, reading.online)
    return found && new SealedEntries(this.redis, this.entryOptions, found)
  }

  /**
   * Replaces the alias's generation in every epoch an instance may be in (the current one, and a
   * neighbour within maxClockSkewMs of a boundary), so no instance finds the old entries again once
   * it re-reads the generation. Throws when that could not be done.
   */
  async purge(alias: string): Promise<void> {
    const now = this.now()
    const current = this.epochs.epochOf(now)
    const epochs = new Set([this.epochs.epochOf(now - this.skewMs), current, this.epochs.epochOf(now + this.skewMs)])
    for (const epoch of epochs) {
      const reading = await this.epochs.read(epoch, { create: epoch === current, fresh: true })
      if (reading.kind === 'absent') continue
      if (reading.kind === 'unavailable' && reading.cause === 'epoch_secret') throw purgeFailed(CACHE_KEK_CANNOT_OPEN)
      if (reading.kind === 'unavailable' || !reading.online) throw purgeFailed(REDIS_UNREACHABLE)
      if (!(await this.generations.replace(reading.state, alias, now))) throw purgeFailed(REDIS_UNREACHABLE)
    }
  }

  status(): 'ok' | 'degraded' {
    return this.degradedReason() ? 'degraded' : 'ok'
  }

  degradedReason(): CacheDegradedReason | undefined {
    if (!this.redis.healthy()) return 'redis_unavailable'
    return this.epochs.keyTrouble
  }

  async close(): Promise<void> {
    this.epochs.clear()
    await this.redis.close()
  }
}

const REDIS_UNREACHABLE = 'The shared cache (Redis) cannot be reached'
const CACHE_KEK_CANNOT_OPEN = 'The shared cache’s key cannot be opened by this instance (see its logs and /readyz)'

function purgeFailed(why: string): KeywrapError {
  return new KeywrapError('cache_unavailable', `${why}: this instance dropped its cached keys of the alias, other instances may not have. Try again.`, {
    retryAfterSeconds: 1,
  })
}
