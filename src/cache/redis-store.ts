/**
 * L2: DEKs shared by every instance through Redis, sealed so that Redis holds nothing useful to a
 * thief (see cache-crypto). Its keys, each with a TTL, each used by single-key commands only:
 *
 *   <prefix>epoch:<n>   the epoch's secret wrapped by the KEK; created with SET NX     TTL 2 epochs
 *   <prefix>gen:<mac>   the alias's generation (16 random bytes); a purge replaces it  TTL 2 epochs
 *   <prefix>dek:<mac>   one sealed DEK                                                  TTL ttlSeconds
 *
 * No hash tag: every command touches one key, so on a Cluster each key may live on any node, and the
 * entries spread over all of them.
 *
 * Revocation. An entry's name mixes in the alias's generation, which each instance re-reads from Redis
 * at most `generationMemoMs` after it last did (and the epoch record with it, so instances never keep
 * diverging secrets). A purge replaces the generation, so it reaches every instance within
 * `generationMemoMs` (1 s by default) — L1 too, as the tiered cache keys L1 entries by generation.
 * An instance that cannot reach Redis keeps trusting what it last read for `offlineGraceMs` (30 s by
 * default) and then drops to misses: that is the purge bound for an instance cut off from Redis.
 *
 * Redis trouble never fails a call: errors and timeouts are counted and read as misses, and a circuit
 * breaker stops trying for a while after consecutive failures. Only purge reports failure, since a
 * purge that did not reach the fleet must not look done.
 */
import { once } from 'node:events'
import { Cluster } from 'ioredis'
import { setTimeout } from 'node:timers/promises'
import { KeywrapError } from '../errors.js'
import type { Metrics } from '../metrics/metrics.js'
import type { KeyProvider } from '../providers/key-provider.js'
import {
  decodeEpochRecord,
  deriveEpochKeys,
  encodeEpochRecord,
  entryName,
  EPOCH_SECRET_BYTES,
  epochAad,
  generationName,
  newEpochSecret,
  newGeneration,
  openEntry,
  sealEntry,
  uint64,
  type EpochKeys,
  type OpenedEntry,
} from './cache-crypto.js'
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js'
import type { CachedDek, DekCacheKey } from './dek-cache.js'
import { DEFAULT_COMMAND_TIMEOUT_MS, type RedisClient } from './redis-connection.js'
import { SingleFlight } from './single-flight.js'

export interface RedisDekStoreOptions {
  readonly redis: RedisClient
  /** The KEK that wraps each epoch's secret: a provider from the registry, ideally of a dedicated alias. */
  readonly kek: KeyProvider
  readonly metrics?: Metrics
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

/** What an entry's name depends on besides the DEK's own key: the epoch and the alias's generation. */
export interface CacheScope {
  readonly alias: string
  readonly epoch: number
  /** uint64 epoch | generation: distinguishes L1 entries the same way. */
  readonly tag: Buffer
  readonly generation: Buffer
  readonly keys: EpochKeys
}

export interface ScopeResult {
  readonly scope: CacheScope
  /** false: Redis could not be reached just now, and the scope is the last one read (within the grace). */
  readonly online: boolean
}

interface EpochState {
  readonly epoch: number
  readonly record: Buffer
  readonly keys: EpochKeys
  confirmedAt: number
  /** Bumped by each purge here, so that a generation read that started before it is not kept. */
  purges: number
  readonly generations: Map<string, { scope: CacheScope; confirmedAt: number }>
  readonly generationFlights: SingleFlight<ScopeResult | undefined>
}

type EpochReading = { kind: 'found'; state: EpochState; online: boolean } | { kind: 'absent' } | { kind: 'unavailable' }

type Outcome<T> = { ok: true; value: T } | { ok: false }

/** A record whose secret the KEK refused to unwrap; not tried again for this long unless it changes. */
const UNUSABLE_RECORD_RETRY_MS = 60_000
const PERMANENT_PROVIDER_ERRORS = new Set(['cannot_unwrap', 'key_version_not_enabled', 'key_version_destroyed'])

export class RedisDekStore {
  private readonly redis: RedisClient
  private readonly kek: KeyProvider
  private readonly metrics: Metrics | undefined
  private readonly prefix: string
  /** An entry's lifetime. */
  readonly ttlMs: number
  private readonly epochMs: number
  private readonly memoMs: number
  private readonly graceMs: number
  private readonly skewMs: number
  private readonly providerRetryMs: number
  private readonly now: () => number
  private readonly breaker: CircuitBreaker
  /**
   * How long a command may take from the moment it is issued: the client's own commandTimeout starts
   * only when a command is sent, and an auto-pipelined command can first wait for the pipeline ahead.
   */
  private readonly commandTimeoutMs: number
  private readonly epochs = new Map<number, EpochState>()
  private readonly epochFlights = new SingleFlight<EpochReading>()
  private readonly unusableRecords = new Map<number, { record: Buffer; until: number }>()
  private providerRetryAt = 0
  /** The KEK failed, or refused the epoch's record: no L2 (nor L1) until that changes. */
  private keyTrouble = false
  private closed = false
  private everReady: boolean

  constructor(options: RedisDekStoreOptions) {
    this.redis = options.redis
    this.kek = options.kek
    this.metrics = options.metrics
    this.prefix = options.keyPrefix
    this.ttlMs = Math.ceil((options.ttlSeconds ?? 600) * 1000)
    this.epochMs = (options.epochSeconds ?? 86_400) * 1000
    this.memoMs = options.generationMemoMs ?? 1000
    this.graceMs = Math.max(options.offlineGraceMs ?? 30_000, this.memoMs)
    this.skewMs = options.maxClockSkewMs ?? 30_000
    this.providerRetryMs = options.providerRetryMs ?? 5000
    this.now = options.now ?? Date.now
    this.breaker = new CircuitBreaker({ now: this.now, ...options.breaker })
    this.commandTimeoutMs = commandTimeoutOf(options.redis)
    if (!(this.ttlMs > 0) || !(this.epochMs > 0)) throw new Error('The Redis cache needs a positive TTL and epoch length.')
    this.redis.on('error', () => this.metrics?.redisErrors.inc({ operation: 'connection' }))
    this.redis.on('ready', () => (this.everReady = true))
    this.everReady = this.redis.status === 'ready'
  }

  /** The scope entries of the alias are named in now, or undefined when it cannot be known. */
  async scope(alias: string): Promise<ScopeResult | undefined> {
    const reading = await this.epochState(this.epochOf(this.now()), { create: true })
    if (reading.kind !== 'found') return undefined
    return this.generation(reading.state, alias, reading.online)
  }

  /**
   * scope() without a promise when both the epoch and the alias's generation were confirmed within
   * the memo period (as on nearly every lookup); undefined when scope() has to ask Redis. Callers
   * try this first, so scope() does not repeat it: its own memo checks answer the same.
   */
  freshScope(alias: string): ScopeResult | undefined {
    const now = this.now()
    const state = this.epochs.get(this.epochOf(now))
    if (!state || now - state.confirmedAt >= this.memoMs) return undefined
    const known = state.generations.get(alias)
    if (!known || now - known.confirmedAt >= this.memoMs) return undefined
    return { scope: known.scope, online: true }
  }

  /** The scope last read for the alias, however old: lets a delete reach an entry the grace may serve again. */
  lastScope(alias: string): CacheScope | undefined {
    return this.epochs.get(this.epochOf(this.now()))?.generations.get(alias)?.scope
  }

  async get(key: DekCacheKey, scope: CacheScope): Promise<OpenedEntry | undefined> {
    const name = this.entryKey(key, scope)
    const read = await this.command('get', () => this.redis.getBuffer(name))
    if (!read.ok || !read.value) return undefined
    const entry = openEntry(scope.keys, name, read.value)
    if (!entry) this.metrics?.redisErrors.inc({ operation: 'authenticate' })
    if (!entry || entry.expiresAt <= this.now()) {
      await this.command('delete', () => this.redis.del(name))
      return undefined
    }
    return entry
  }

  async set(key: DekCacheKey, dek: CachedDek, scope: CacheScope): Promise<void> {
    const name = this.entryKey(key, scope)
    const value = sealEntry(scope.keys, name, dek, this.now() + this.ttlMs)
    await this.command('set', () => this.redis.set(name, value, 'PX', this.ttlMs))
  }

  async delete(key: DekCacheKey, scope: CacheScope): Promise<void> {
    const name = this.entryKey(key, scope)
    await this.command('delete', () => this.redis.del(name))
  }

  /**
   * Replaces the alias's generation in every epoch an instance may be in (the current one, and a
   * neighbour within maxClockSkewMs of a boundary), so no instance finds the old entries again once
   * it re-reads the generation. Throws when that could not be done.
   */
  async purge(alias: string): Promise<void> {
    const now = this.now()
    const current = this.epochOf(now)
    const epochs = new Set([this.epochOf(now - this.skewMs), current, this.epochOf(now + this.skewMs)])
    for (const epoch of epochs) {
      const reading = await this.epochState(epoch, { create: epoch === current, fresh: true })
      if (reading.kind === 'absent') continue
      if (reading.kind === 'unavailable' || !reading.online) throw purgeFailed()
      const { state } = reading
      const token = newGeneration()
      const written = await this.command('purge', () => this.redis.set(this.generationKey(state, alias), token, 'PX', this.recordTtlMs()))
      if (!written.ok) throw purgeFailed()
      state.purges++
      state.generations.set(alias, { scope: scopeOf(state, alias, token), confirmedAt: now })
    }
  }

  status(): 'ok' | 'degraded' {
    if (this.closed || this.redis.status !== 'ready' || this.breaker.state() !== 'closed' || this.keyTrouble) return 'degraded'
    return 'ok'
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.epochs.clear()
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

  private epochOf(time: number): number {
    return Math.floor(time / this.epochMs)
  }

  private recordTtlMs(): number {
    return Math.ceil(2 * this.epochMs)
  }

  private entryKey(key: DekCacheKey, scope: CacheScope): string {
    return `${this.prefix}dek:${entryName(scope.keys, key, scope.generation)}`
  }

  private generationKey(state: EpochState, alias: string): string {
    return `${this.prefix}gen:${generationName(state.keys, alias)}`
  }

  private epochKey(epoch: number): string {
    return `${this.prefix}epoch:${epoch}`
  }

  /** The epoch's keys from the memo, re-read from Redis when older than the memo bound (`fresh`: always). */
  private async epochState(epoch: number, options: { create: boolean; fresh?: boolean }): Promise<EpochReading> {
    const known = this.epochs.get(epoch)
    if (known && !options.fresh && this.now() - known.confirmedAt < this.memoMs) return { kind: 'found', state: known, online: true }
    return this.epochFlights.run(`${epoch}/${options.create}`, () => this.readEpoch(epoch, options.create))
  }

  private async readEpoch(epoch: number, create: boolean): Promise<EpochReading> {
    const started = this.now()
    const key = this.epochKey(epoch)
    const known = this.epochs.get(epoch)
    const offline = (): EpochReading =>
      known && started - known.confirmedAt < this.graceMs ? { kind: 'found', state: known, online: false } : { kind: 'unavailable' }

    const read = await this.command('epoch', () => this.redis.getBuffer(key))
    if (!read.ok) return offline()
    let record = read.value
    if (known && record?.equals(known.record)) {
      known.confirmedAt = started
      return { kind: 'found', state: known, online: true }
    }
    if (known && !record) {
      // Evicted, or lost in a failover: put it back, so that instances holding it keep agreeing.
      const restored = await this.command('epoch', () => this.redis.set(key, known.record, 'PX', this.recordTtlMs(), 'NX'))
      if (!restored.ok) return offline()
      if (restored.value === 'OK') {
        known.confirmedAt = started
        return { kind: 'found', state: known, online: true }
      }
      const reread = await this.command('epoch', () => this.redis.getBuffer(key))
      if (!reread.ok) return offline()
      record = reread.value
    }
    // From here on, what this instance knew of the epoch is no longer the fleet's.
    if (known) this.epochs.delete(epoch)
    if (record) return this.adoptEpoch(epoch, record, started)
    return create ? this.createEpoch(epoch, started) : { kind: 'absent' }
  }

  private async createEpoch(epoch: number, started: number): Promise<EpochReading> {
    if (this.now() < this.providerRetryAt) return { kind: 'unavailable' }
    const secret = newEpochSecret()
    let record: Buffer
    try {
      const wrapped = await this.kek.encrypt(secret, epochAad(epoch))
      record = encodeEpochRecord(wrapped.version, wrapped.ciphertext)
    } catch {
      this.providerFailed()
      return { kind: 'unavailable' }
    }
    const stored = await this.command('epoch', () => this.redis.set(this.epochKey(epoch), record, 'PX', this.recordTtlMs(), 'NX'))
    if (!stored.ok) return { kind: 'unavailable' }
    if (stored.value === 'OK') return this.remember(epoch, record, secret, started)
    // Another instance created it first: use theirs.
    const read = await this.command('epoch', () => this.redis.getBuffer(this.epochKey(epoch)))
    if (!read.ok || !read.value) return { kind: 'unavailable' }
    return this.adoptEpoch(epoch, read.value, started)
  }

  private async adoptEpoch(epoch: number, record: Buffer, started: number): Promise<EpochReading> {
    const unusable = this.unusableRecords.get(epoch)
    if (unusable && unusable.record.equals(record) && this.now() < unusable.until) return { kind: 'unavailable' }
    const decoded = decodeEpochRecord(record)
    if (!decoded) {
      this.recordUnusable(epoch, record)
      return { kind: 'unavailable' }
    }
    if (this.now() < this.providerRetryAt) return { kind: 'unavailable' }
    let secret: Buffer
    try {
      secret = (await this.kek.decrypt(decoded.ciphertext, epochAad(epoch), decoded.version)).plaintext
    } catch (error) {
      if (error instanceof KeywrapError && PERMANENT_PROVIDER_ERRORS.has(error.code)) this.recordUnusable(epoch, record)
      else this.providerFailed()
      return { kind: 'unavailable' }
    }
    if (secret.length !== EPOCH_SECRET_BYTES) {
      this.recordUnusable(epoch, record)
      return { kind: 'unavailable' }
    }
    return this.remember(epoch, record, secret, started)
  }

  private remember(epoch: number, record: Buffer, secret: Buffer, confirmedAt: number): EpochReading {
    const state: EpochState = {
      epoch,
      record,
      keys: deriveEpochKeys(secret),
      confirmedAt,
      purges: 0,
      generations: new Map(),
      generationFlights: new SingleFlight(),
    }
    this.epochs.set(epoch, state)
    this.unusableRecords.delete(epoch)
    this.keyTrouble = false
    for (const old of this.epochs.keys()) if (old < epoch - 1) this.epochs.delete(old)
    for (const old of this.unusableRecords.keys()) if (old < epoch - 1) this.unusableRecords.delete(old)
    return { kind: 'found', state, online: true }
  }

  /** A KEK that refuses a record is not asked again about the same bytes for a while; the rest of the service goes on. */
  private recordUnusable(epoch: number, record: Buffer): void {
    this.keyTrouble = true
    this.metrics?.redisErrors.inc({ operation: 'epoch_record' })
    this.unusableRecords.set(epoch, { record, until: this.now() + UNUSABLE_RECORD_RETRY_MS })
  }

  private providerFailed(): void {
    this.keyTrouble = true
    this.providerRetryAt = this.now() + this.providerRetryMs
  }

  /**
   * The alias's generation in this epoch: read (or created, SET NX GET) at most once per memo
   * period. `online` false: the epoch could not be confirmed just now, so Redis is not tried again.
   */
  private async generation(state: EpochState, alias: string, online: boolean): Promise<ScopeResult | undefined> {
    const known = state.generations.get(alias)
    const now = this.now()
    if (known && now - known.confirmedAt < this.memoMs) return { scope: known.scope, online }
    if (!online) return known && now - known.confirmedAt < this.graceMs ? { scope: known.scope, online: false } : undefined
    return state.generationFlights.run(alias, async () => {
      const started = this.now()
      const purges = state.purges
      const candidate = newGeneration()
      const read = await this.command('generation', () =>
        this.redis.setBuffer(this.generationKey(state, alias), candidate, 'PX', this.recordTtlMs(), 'NX', 'GET'),
      )
      const current = state.generations.get(alias)
      if (!read.ok) return current && started - current.confirmedAt < this.graceMs ? { scope: current.scope, online: false } : undefined
      // A purge here while the read was on its way has already put the newer generation in the memo.
      if (state.purges !== purges && current) return { scope: current.scope, online: true }
      const token = Buffer.isBuffer(read.value) ? read.value : candidate
      const scope = current?.scope.generation.equals(token) ? current.scope : scopeOf(state, alias, token)
      state.generations.set(alias, { scope, confirmedAt: started })
      return { scope, online: true }
    })
  }

  /** Runs one Redis command through the breaker; an error or timeout is counted and becomes `ok: false`. */
  private async command<T>(operation: string, run: () => Promise<T>): Promise<Outcome<T>> {
    if (this.closed || !this.breaker.allows()) return { ok: false }
    if (this.redis.status !== 'ready') {
      // Before the first connection is up, not yet a failure; after, a lost connection is one.
      if (this.everReady) {
        this.breaker.failed()
        this.metrics?.redisErrors.inc({ operation })
      } else {
        this.breaker.released()
      }
      return { ok: false }
    }
    try {
      const value = await withDeadline(run(), this.commandTimeoutMs)
      this.breaker.succeeded()
      return { ok: true, value }
    } catch {
      this.breaker.failed()
      this.metrics?.redisErrors.inc({ operation })
      return { ok: false }
    }
  }
}

/** The client's commandTimeout (set on each node of a Cluster). */
function commandTimeoutOf(redis: RedisClient): number {
  const options = redis instanceof Cluster ? redis.options.redisOptions : redis.options
  return options?.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS
}

/** `promise`, or a rejection once `ms` have passed since the call. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  // One promise and a timer, rather than race() and finally(): this wraps every Redis command.
  return new Promise<T>((resolve, reject) => {
    const timer = globalThis.setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms.`)), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}

function scopeOf(state: EpochState, alias: string, generation: Buffer): CacheScope {
  return { alias, epoch: state.epoch, tag: Buffer.concat([uint64(state.epoch), generation]), generation, keys: state.keys }
}

function purgeFailed(): KeywrapError {
  return new KeywrapError(
    'cache_unavailable',
    'The shared cache (Redis) cannot be reached: this instance dropped its cached keys of the alias, other instances may not have. Try again.',
    { retryAfterSeconds: 1 },
  )
}
