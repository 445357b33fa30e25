/**
 * The DEK cache the key service uses: L1 (this process) in front of L2 (Redis, shared by the fleet),
 * then the provider. An L2 hit fills L1; a set writes both.
 *
 * With L2, an L1 entry is stamped with the alias's current epoch and generation, so a purge anywhere
 * in the fleet hides it here as soon as this instance re-reads the generation, and an instance that
 * cannot confirm the generation stops serving L1 after the offline grace. Without L2, L1 is used
 * alone and a purge is local. An instance that reaches Redis but cannot open the fleet's epoch secret
 * (LocalOnly) uses L1 alone too, each entry for at most the offline grace, since no purge elsewhere
 * reaches it.
 */
import type { Metrics } from '../metrics/metrics.js'
import type { OpenedEntry } from './cache-crypto.js'
import type { CachedDek, CacheDegradedReason, CacheHit, DekCache, DekCacheKey } from './dek-cache.js'
import type { MemoryDekCache } from './memory-cache.js'

/** L2 as the tiered cache uses it (RedisDekStore). Redis trouble reads as a miss, except in purge. */
export interface SharedDekStore {
  /** An entry's lifetime. */
  readonly ttlMs: number
  /** The alias's entries as the fleet has them now; undefined when that cannot be known (then none may be served); LocalOnly: L1 alone. */
  entries(alias: string): Promise<SharedEntries | LocalOnly | undefined>
  /** Fleet-wide; throws when that could not be done. */
  purge(alias: string): Promise<void>
  status(): 'ok' | 'degraded'
  degradedReason(): CacheDegradedReason | undefined
  close(): Promise<void>
}

/** This instance cannot take part in L2 although Redis answers: L1 serves alone, each entry for at most `maxAgeMs`. */
export interface LocalOnly {
  readonly localOnly: true
  readonly maxAgeMs: number
}

/** What L1 entries cached while LocalOnly are stamped with; never an L2 stamp (those are `<epoch>.<token>`). */
const LOCAL_ONLY_STAMP = 'local-only'

export interface SharedEntries {
  /** What L1 entries of the alias must be stamped with to be served: it changes with a purge anywhere in the fleet. */
  readonly stamp: string
  get(key: DekCacheKey): Promise<OpenedEntry | undefined>
  set(key: DekCacheKey, dek: CachedDek): Promise<void>
  delete(key: DekCacheKey): Promise<void>
}

export interface TieredDekCacheOptions {
  /** L1; `new MemoryDekCache({ maxEntries: 0, … })` turns it off. */
  readonly l1: MemoryDekCache
  /** L2; absent: L1 only. */
  readonly l2?: SharedDekStore
  readonly metrics?: Metrics
  /** Milliseconds, for the remaining life of an L2 entry copied to L1; default Date.now. */
  readonly now?: () => number
}

export class TieredDekCache implements DekCache {
  private readonly l1: MemoryDekCache
  private readonly l2: SharedDekStore | undefined
  private readonly metrics: Metrics | undefined
  private readonly now: () => number

  constructor(options: TieredDekCacheOptions) {
    this.l1 = options.l1
    this.l2 = options.l2
    this.metrics = options.metrics
    this.now = options.now ?? Date.now
  }

  async get(key: DekCacheKey): Promise<CacheHit | undefined> {
    if (!this.l2) return this.counted(await this.l1.get(key))
    const shared = await this.l2.entries(key.alias)
    if (!shared) return this.counted(undefined)
    if (isLocalOnly(shared)) return this.counted(await this.l1.get(key, LOCAL_ONLY_STAMP))
    const hit = await this.l1.get(key, shared.stamp)
    if (hit) return this.counted(hit)
    const entry = await shared.get(key)
    if (!entry) return this.counted(undefined)
    const dek = { plaintext: entry.plaintext, version: entry.version }
    await this.l1.set(key, dek, { ttlMs: entry.expiresAt - this.now(), stamp: shared.stamp })
    return this.counted({ ...dek, level: 'l2' })
  }

  async set(key: DekCacheKey, dek: CachedDek): Promise<void> {
    if (!this.l2) return this.l1.set(key, dek)
    const shared = await this.l2.entries(key.alias)
    if (!shared) return
    if (isLocalOnly(shared)) return this.l1.set(key, dek, { ttlMs: shared.maxAgeMs, stamp: LOCAL_ONLY_STAMP })
    await this.l1.set(key, dek, { ttlMs: this.l2.ttlMs, stamp: shared.stamp })
    await shared.set(key, dek)
  }

  async delete(key: DekCacheKey): Promise<void> {
    await this.l1.delete(key)
    const shared = await this.l2?.entries(key.alias)
    if (shared && !isLocalOnly(shared)) await shared.delete(key)
  }

  /** Drops the alias's entries here at once, and fleet-wide; throws when L2 could not be purged. */
  async purge(alias: string): Promise<void> {
    await this.l1.purge(alias)
    await this.l2?.purge(alias)
  }

  status(): 'ok' | 'degraded' | 'disabled' {
    return this.l2 ? this.l2.status() : this.l1.status()
  }

  degradedReason(): CacheDegradedReason | undefined {
    return this.l2?.degradedReason()
  }

  async close(): Promise<void> {
    await Promise.all([this.l1.close(), this.l2?.close()])
  }

  private counted(hit: CacheHit | undefined): CacheHit | undefined {
    this.metrics?.cacheLookups.inc({ result: hit?.level ?? 'miss' })
    if (hit) this.metrics?.providerCallsSaved.inc()
    return hit
  }
}

function isLocalOnly(shared: SharedEntries | LocalOnly): shared is LocalOnly {
  return 'localOnly' in shared
}
