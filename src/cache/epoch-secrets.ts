/**
 * The shared cache's epochs: per epoch, one random secret, stored in Redis (`<prefix>epoch:<n>`, SET
 * NX, TTL two epochs) only wrapped by the KEK, from which every instance derives the same entry keys
 * (see cache-crypto). What was read is trusted for `memoMs`, and while Redis cannot be reached for
 * `graceMs`; a record evicted or lost in a failover is put back, so instances keep agreeing.
 */
import { KeywrapError } from '../errors.js'
import type { Metrics } from '../metrics/metrics.js'
import type { KeyProvider } from '../providers/key-provider.js'
import { decodeEpochRecord, deriveEpochKeys, encodeEpochRecord, EPOCH_SECRET_BYTES, epochAad, newEpochSecret, type EpochKeys } from './cache-crypto.js'
import type { GuardedRedis } from './guarded-redis.js'
import { SingleFlight } from './single-flight.js'

export interface EpochState {
  readonly epoch: number
  readonly record: Buffer
  readonly keys: EpochKeys
  confirmedAt: number
}

/** `online` false: Redis could not be reached just now, and the state is the last one read (within the grace). */
export type EpochReading = { kind: 'found'; state: EpochState; online: boolean } | { kind: 'absent' } | { kind: 'unavailable' }

export interface EpochSecretsOptions {
  readonly prefix: string
  readonly epochMs: number
  readonly memoMs: number
  readonly graceMs: number
  /** After the KEK failed for an epoch's secret, how long before trying it again. */
  readonly providerRetryMs: number
  readonly metrics?: Metrics
  readonly now: () => number
}

/** A record whose secret the KEK refused to unwrap; not tried again for this long unless it changes. */
const UNUSABLE_RECORD_RETRY_MS = 60_000
const PERMANENT_PROVIDER_ERRORS = new Set(['cannot_unwrap', 'key_version_not_enabled', 'key_version_destroyed'])

export class EpochSecrets {
  private readonly epochs = new Map<number, EpochState>()
  private readonly flights = new SingleFlight<EpochReading>()
  private readonly unusableRecords = new Map<number, { record: Buffer; until: number }>()
  private providerRetryAt = 0
  private kekTrouble = false

  constructor(
    private readonly redis: GuardedRedis,
    private readonly kek: KeyProvider,
    private readonly options: EpochSecretsOptions,
  ) {}

  /** The KEK failed, or refused the epoch's record: no L2 (nor L1) until that changes. */
  get keyTrouble(): boolean {
    return this.kekTrouble
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
    const known = this.epochs.get(epoch)
    if (known && !options.fresh && this.options.now() - known.confirmedAt < this.options.memoMs) return { kind: 'found', state: known, online: true }
    return this.flights.run(`${epoch}/${options.create}`, () => this.readEpoch(epoch, options.create))
  }

  clear(): void {
    this.epochs.clear()
  }

  private key(epoch: number): string {
    return `${this.options.prefix}epoch:${epoch}`
  }

  private async readEpoch(epoch: number, create: boolean): Promise<EpochReading> {
    const started = this.options.now()
    const key = this.key(epoch)
    const known = this.epochs.get(epoch)
    const offline = (): EpochReading =>
      known && started - known.confirmedAt < this.options.graceMs ? { kind: 'found', state: known, online: false } : { kind: 'unavailable' }

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
    if (this.options.now() < this.providerRetryAt) return { kind: 'unavailable' }
    const secret = newEpochSecret()
    let record: Buffer
    try {
      const wrapped = await this.kek.encrypt(secret, epochAad(epoch))
      record = encodeEpochRecord(wrapped.version, wrapped.ciphertext)
    } catch {
      this.providerFailed()
      return { kind: 'unavailable' }
    }
    const stored = await this.redis.run('epoch', (redis) => redis.set(this.key(epoch), record, 'PX', this.recordTtlMs(), 'NX'))
    if (!stored.ok) return { kind: 'unavailable' }
    if (stored.value === 'OK') return this.remember(epoch, record, secret, started)
    // Another instance created it first: use theirs.
    const read = await this.redis.run('epoch', (redis) => redis.getBuffer(this.key(epoch)))
    if (!read.ok || !read.value) return { kind: 'unavailable' }
    return this.adopt(epoch, read.value, started)
  }

  private async adopt(epoch: number, record: Buffer, started: number): Promise<EpochReading> {
    const unusable = this.unusableRecords.get(epoch)
    if (unusable && unusable.record.equals(record) && this.options.now() < unusable.until) return { kind: 'unavailable' }
    const decoded = decodeEpochRecord(record)
    if (!decoded) {
      this.recordUnusable(epoch, record)
      return { kind: 'unavailable' }
    }
    if (this.options.now() < this.providerRetryAt) return { kind: 'unavailable' }
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
    const state: EpochState = { epoch, record, keys: deriveEpochKeys(secret), confirmedAt }
    this.epochs.set(epoch, state)
    this.unusableRecords.delete(epoch)
    this.kekTrouble = false
    for (const old of this.epochs.keys()) if (old < epoch - 1) this.epochs.delete(old)
    for (const old of this.unusableRecords.keys()) if (old < epoch - 1) this.unusableRecords.delete(old)
    return { kind: 'found', state, online: true }
  }

  /** A KEK that refuses a record is not asked again about the same bytes for a while; the rest of the service goes on. */
  private recordUnusable(epoch: number, record: Buffer): void {
    this.kekTrouble = true
    this.options.metrics?.redisErrors.inc({ operation: 'epoch_record' })
    this.unusableRecords.set(epoch, { record, until: this.options.now() + UNUSABLE_RECORD_RETRY_MS })
  }

  private providerFailed(): void {
    this.kekTrouble = true
    this.providerRetryAt = this.options.now() + this.options.providerRetryMs
  }
}
