/**
 * The DEK cache the key service uses: L1 (this process) in front of L2 (Redis, shared by the fleet),
 * then the provider. An L2 hit fills L1; a set writes both.
 *
 * With L2, an L1 entry is keyed by the alias's current epoch and generation too (the scope), so a
 * purge anywhere in the fleet hides it here as soon as this instance re-reads the generation, and an
 * instance that cannot confirm the generation stops serving L1 after the offline grace. Without L2,
 * L1 is used alone and a purge is local.
 */
import type { Metrics } from '../metrics/metrics.js'
import type { CachedDek, CacheHit, DekCache, DekCacheKey } from './dek-cache.js'
import type { MemoryDekCache } from './memory-cache.js'
import type { CacheScope, RedisDekStore } from './redis-store.js'

export interface TieredDekCacheOptions {
  /** L1; `new MemoryDekCache({ maxEntries: 0, … })` turns it off. */
  readonly l1: MemoryDekCache
  /** L2; absent: L1 only. */
  readonly l2?: RedisDekStore
  readonly metrics?: Metrics
  /** Milliseconds, for the remaining life of an L2 entry copied to L1; default Date.now. */
  readonly now?: () => number
}

export class TieredDekCache implements DekCache {
  private readonly l1: MemoryDekCache
  private readonly l2: RedisDekStore | undefined
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
    const found = this.l2.freshScope(key.alias) ?? (await this.l2.scope(key.alias))
    if (!found) return this.counted(undefined)
    const local = scoped(key, found.scope)
    const hit = await this.l1.get(local)
    if (hit || !found.online) return this.counted(hit)
    const entry = await this.l2.get(key, found.scope)
    if (!entry) return this.counted(undefined)
    const dek = { plaintext: entry.plaintext, version: entry.version }
    await this.l1.set(local, dek, { ttlMs: entry.expiresAt - this.now() })
    return this.counted({ ...dek, level: 'l2' })
  }

  async set(key: DekCacheKey, dek: CachedDek): Promise<void> {
    if (!this.l2) return this.l1.set(key, dek)
    const found = this.l2.freshScope(key.alias) ?? (await this.l2.scope(key.alias))
    if (!found) return
    await this.l1.set(scoped(key, found.scope), dek, { ttlMs: this.l2.ttlMs })
    if (found.online) await this.l2.set(key, dek, found.scope)
  }

  async delete(key: DekCacheKey): Promise<void> {
    if (!this.l2) return this.l1.delete(key)
    const last = this.l2.lastScope(key.alias)
    if (last) await this.l1.delete(scoped(key, last))
    const found = this.l2.freshScope(key.alias) ?? (await this.l2.scope(key.alias))
    if (!found) return
    await this.l1.delete(scoped(key, found.scope))
    if (found.online) await this.l2.delete(key, found.scope)
  }

  /** Drops the alias's entries here at once, and fleet-wide (see RedisDekStore.purge); throws when L2 could not be purged. */
  async purge(alias: string): Promise<void> {
    await this.l1.purge(alias)
    await this.l2?.purge(alias)
  }

  status(): 'ok' | 'degraded' | 'disabled' {
    return this.l2 ? this.l2.status() : this.l1.status()
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

function scoped(key: DekCacheKey, scope: CacheScope): DekCacheKey {
  return { alias: key.alias, wrappedKey: key.wrappedKey, aad: Buffer.concat([key.aad, scope.tag]) }
}
