/**
 * The shared cache's epochs: per epoch, one random secret, stored in Redis (`<prefix>epoch:<kek>:<n>`,
 * SET NX, TTL two epochs) only wrapped by the KEK, from which every instance derives the same entry
 * keys (see cache-crypto). What was read is trusted for `memoMs`, and while Redis cannot be reached for
 * `graceMs`; a record evicted or lost in a failover is put back, so instances keep agreeing.
 *
 * `<kek>` is a digest of the KEK's identity (cache-crypto's kekTag): deployments whose cache KEKs
 * differ never share, nor overwrite, each other's records. When the KEK still cannot open the record
 * (refused, or unavailable), the reading says so (`cause: 'epoch_secret'`), one error line tells the
 * operator what to do, and the cache runs on L1 alone until the KEK can open it.
 */
import { KeywrapError } from '../errors.js'
import type { Metrics } from '../metrics/metrics.js'
import type { KeyProvider } from '../providers/key-provider.js'
import type { Logger } from '../support/logger.js'
import { decodeEpochRecord, deriveEpochKeys, encodeEpochRecord, EPOCH_SECRET_BYTES, epochAad, kekTag, newEpochSecret, type EpochKeys } from './cache-crypto.js'
import type { GuardedRedis } from './guarded-redis.js'
import { SingleFlight } from './single-flight.js'

export interface EpochState {
  readonly epoch: number
  readonly record: Buffer
  readonly keys: EpochKeys
  confirmedAt: number
}

/**
 * `online` false: Redis could not be reached just now, and the state is the last one read (within the
 * grace). `cause`: Redis could not be reached, or it could and the KEK could not give the epoch's secret.
 */
export type EpochReading = { kind: 'found'; state: EpochState; online: boolean } | { kind: 'absent' } | { kind: 'unavailable'; cause: 'redis' | 'epoch_secret' }

/** Why the KEK gives no epoch secret: it refuses the record in Redis, or it cannot be reached. */
export type KekTrouble = 'cache_kek_refused' | 'cache_kek_unavailable'

export interface EpochSecretsOptions {
  readonly prefix: string
  readonly epochMs: number
  readonly memoMs: number
  readonly graceMs: number
  /** After the KEK failed for an epoch's secret, how long before trying it again. */
  readonly providerRetryMs: number
  readonly metrics?: Metrics
  readonly logger?: Logger
  /** The alias of the KEK (KEYWRAP_CACHE_KEK_ALIAS), for the operator's messages. */
  readonly kekAlias?: string
  readonly now: () => number
}

const REDIS_UNAVAILABLE: EpochReading = { kind: 'unavailable', cause: 'redis' }
const SECRET_UNAVAILABLE: EpochReading = { kind: 'unavailable', cause: 'epoch_secret' }

/** A record whose secret the KEK refused to unwrap; not tried again for this long unless it changes. */
const UNUSABLE_RECORD_RETRY_MS = 60_000
const PERMANENT_PROVIDER_ERRORS = new Set(['cannot_unwrap', 'key_version_not_enabled', 'key_version_destroyed'])

export class EpochSecrets {
  private readonly epochs = new Map<number, EpochState>()
  private readonly flights = new SingleFlight<EpochReading>()
  private readonly unusableRecords = new Map<number, { record: Buffer; until: number }>()
  private providerRetryAt = 0
  private trouble: KekTrouble | undefined
  /** The KEK's tag in record names, and when it last failed to give an epoch's secret (so lookups meanwhile cost no Redis read). */
  private identity: string | undefined
  private tag: string | undefined
  private secretFailedAt: { epoch: number; at: number } | undefined

  constructor(
    private readonly redis: GuardedRedis,
    private readonly kek: KeyProvider,
    private readonly options: EpochSecretsOptions,
  ) {}

  /** The KEK failed, or refused the epoch's record: no L2 (L1 alone) until that changes. */
  get keyTrouble(): KekTrouble | undefined {
    return this.trouble
  }

  epochOf(time: number): number {
    return Math.floor(time / this.options.epochMs)
  }

  /** The TTL of an epoch's records (its secret, its generations): two epochs. */
  recordTtlMs(): number {
    return Math.ceil(2 * this.options.epochMs)
  }

  /** The epoch's keys from the memo, re-read from Redis when older than the memo bound (`fresh`: always). */
  async read(epoch: number, options: { create: boolean; fresh?: boolean }): Promise<EpochReading> {
    this.followKekIdentity()
    const failed = this.secretFailedAt
    if (failed?.epoch === epoch && !options.fresh && this.options.now() - failed.at < this.options.memoMs) return SECRET_UNAVAILABLE
    const known = this.epochs.get(epoch)
    if (known && !options.fresh && this.options.now() - known.confirmedAt < this.options.memoMs) return { kind: 'found', state: known, online: true }
    return this.flights.run(`${epoch}/${options.create}`, () => this.readEpoch(epoch, options.create))
  }

  clear(): void {
    this.epochs.clear()
  }

  private key(epoch: number): string {
    return `${this.options.prefix}epoch:${this.tag}:${epoch}`
  }

  /** A KEK whose identity changed (a local key's oldest version destroyed) names other records: what was read of the old ones is dropped. */
  private followKekIdentity(): void {
    let identity: string
    try {
      identity = this.kek.identity?.() ?? this.kek.uri
    } catch {
      identity = this.kek.uri
    }
    if (identity === this.identity) return
    this.identity = identity
    this.tag = kekTag(identity)
    this.epochs.clear()
    this.unusableRecords.clear()
    this.secretFailedAt = undefined
  }

  private async readEpoch(epoch: number, create: boolean): Promise<EpochReading> {
    const started = this.options.now()
    const key = this.key(epoch)
    const known = this.epochs.get(epoch)
    const offline = (): EpochReading =>
      known && started - known.confirmedAt < this.options.graceMs ? { kind: 'found', state: known, online: false } : REDIS_UNAVAILABLE

    const read = await this.redis.run('epoch', (redis) => redis.getBuffer(key))
    if (!read.ok) return offline()
    let record = read.value
    if (known && record?.equals(known.record)) {
      known.confirmedAt = started
      return { kind: 'found', state: known, online: true }
    }
    if (known && !record) {
      // Evicted, or lost in a failover: put it back, so that instances holding it keep agreeing.
      const restored = await this.redis.run('epoch', (redis) => redis.set(key, known.record, 'PX', this.recordTtlMs(), 'NX'))
      if (!restored.ok) return offline()
      if (restored.value === 'OK') {
        known.confirmedAt = started
        return { kind: 'found', state: known, online: true }
      }
      const reread = await this.redis.run('epoch', (redis) => redis.getBuffer(key))
      if (!reread.ok) return offline()
      record = reread.value
    }
    // From here on, what this instance knew of the epoch is no longer the fleet's.
    if (known) this.epochs.delete(epoch)
    if (record) return this.adopt(epoch, record, started)
    return create ? this.create(epoch, started) : { kind: 'absent' }
  }

  private async create(epoch: number, started: number): Promise<EpochReading> {
    if (this.options.now() < this.providerRetryAt) return this.secretUnavailable(epoch)
    const secret = newEpochSecret()
    let record: Buffer
    try {
      const wrapped = await this.kek.encrypt(secret, epochAad(epoch))
      record = encodeEpochRecord(wrapped.version, wrapped.ciphertext)
    } catch (error) {
      this.providerFailed(error)
      return this.secretUnavailable(epoch)
    }
    const stored = await this.redis.run('epoch', (redis) => redis.set(this.key(epoch), record, 'PX', this.recordTtlMs(), 'NX'))
    if (!stored.ok) return REDIS_UNAVAILABLE
    if (stored.value === 'OK') return this.remember(epoch, record, secret, started)
    // Another instance created it first: use theirs.
    const read = await this.redis.run('epoch', (redis) => redis.getBuffer(this.key(epoch)))
    if (!read.ok || !read.value) return REDIS_UNAVAILABLE
    return this.adopt(epoch, read.value, started)
  }

  private async adopt(epoch: number, record: Buffer, started: number): Promise<EpochReading> {
    const unusable = this.unusableRecords.get(epoch)
    if (unusable && unusable.record.equals(record) && this.options.now() < unusable.until) return this.secretUnavailable(epoch)
    const decoded = decodeEpochRecord(record)
    if (!decoded) {
      this.recordUnusable(epoch, record, 'the record is not one keywrap writes')
      return this.secretUnavailable(epoch)
    }
    if (this.options.now() < this.providerRetryAt) return this.secretUnavailable(epoch)
    let secret: Buffer
    try {
      secret = (await this.kek.decrypt(decoded.ciphertext, epochAad(epoch), decoded.version)).plaintext
    } catch (error) {
      if (error instanceof KeywrapError && PERMANENT_PROVIDER_ERRORS.has(error.code)) this.recordUnusable(epoch, record, `the KEK answers ${error.code}`)
      else this.providerFailed(error)
      return this.secretUnavailable(epoch)
    }
    if (secret.length !== EPOCH_SECRET_BYTES) {
      this.recordUnusable(epoch, record, 'the secret inside has the wrong length')
      return this.secretUnavailable(epoch)
    }
    return this.remember(epoch, record, secret, started)
  }

  private secretUnavailable(epoch: number): EpochReading {
    this.secretFailedAt = { epoch, at: this.options.now() }
    return SECRET_UNAVAILABLE
  }

  private remember(epoch: number, record: Buffer, secret: Buffer, confirmedAt: number): EpochReading {
    const state: EpochState = { epoch, record, keys: deriveEpochKeys(secret), confirmedAt }
    this.epochs.set(epoch, state)
    this.unusableRecords.delete(epoch)
    this.secretFailedAt = undefined
    if (this.trouble)
      this.options.logger?.info({ kekAlias: this.options.kekAlias }, 'The cache KEK opens the shared cache’s epoch secret again: L2 (Redis) is back in use.')
    this.trouble = undefined
    for (const old of this.epochs.keys()) if (old < epoch - 1) this.epochs.delete(old)
    for (const old of this.unusableRecords.keys()) if (old < epoch - 1) this.unusableRecords.delete(old)
    return { kind: 'found', state, online: true }
  }

  /** A KEK that refuses a record is not asked again about the same bytes for a while; the rest of the service goes on. */
  private recordUnusable(epoch: number, record: Buffer, why: string): void {
    this.options.metrics?.redisErrors.inc({ operation: 'epoch_record' })
    this.unusableRecords.set(epoch, { record, until: this.options.now() + UNUSABLE_RECORD_RETRY_MS })
    this.troubleBegins('cache_kek_refused', why)
  }

  private providerFailed(error: unknown): void {
    this.providerRetryAt = this.options.now() + this.options.providerRetryMs
    this.troubleBegins('cache_kek_unavailable', error instanceof KeywrapError ? error.code : 'the KEK failed')
  }

  /** One error line when the trouble begins (or changes), not one per lookup. */
  private troubleBegins(trouble: KekTrouble, why: string): void {
    if (this.trouble === trouble) return
    this.trouble = trouble
    const alias = `KEYWRAP_CACHE_KEK_ALIAS=${this.options.kekAlias ?? '?'} (${this.kek.uri})`
    const message =
      trouble === 'cache_kek_refused'
        ? `The shared cache's epoch secret in Redis cannot be opened with the cache KEK, ${alias}: ${why}. This instance runs on L1 alone (no Redis cache; entries live at most the offline grace) until it can. Give every instance that shares this Redis and KEYWRAP_REDIS_KEY_PREFIX the same cache KEK (the same Cloud KMS key, or the same local keyring), with its version that wrapped the secret enabled; or give this deployment its own KEYWRAP_REDIS_KEY_PREFIX.`
        : `The cache KEK, ${alias}, cannot be used to open or create the shared cache's epoch secret: ${why}. This instance runs on L1 alone (no Redis cache; entries live at most the offline grace) and tries the KEK again every ${Math.round(this.options.providerRetryMs / 1000)} s; check that key's provider.`
    this.options.logger?.error({ kekAlias: this.options.kekAlias, cache: trouble }, message)
  }
}
