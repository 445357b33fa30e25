/** L1: an in-process LRU with a TTL, bounded by entries. */
import { LRUCache } from 'lru-cache'
import { hashInput } from '../crypto/hash-input.js'
import type { CachedDek, CacheHit, DekCache, DekCacheKey } from './dek-cache.js'

/**
 * The DEK is kept as a one-byte string of its bytes (latin1), not as the Buffer it came in: a small
 * Buffer is a slice of an 8 KiB slab shared with the request's other short-lived buffers, and a cached
 * slice keeps the whole slab alive. With 100,000 DEKs that was 94 MB of retained slabs; as strings
 * they take about 5 MB.
 */
interface Entry {
  readonly alias: string
  readonly plaintext: string
  readonly version: number
}

export class MemoryDekCache implements DekCache {
  private readonly entries: LRUCache<string, Entry> | undefined

  /** `now` (milliseconds) replaces the monotonic clock, for tests of expiry. */
  constructor(options: { maxEntries: number; ttlSeconds: number; now?: () => number }) {
    if (options.maxEntries > 0 && options.ttlSeconds > 0) {
      this.entries = new LRUCache({
        max: options.maxEntries,
        ttl: options.ttlSeconds * 1000,
        ttlAutopurge: false,
        ...(options.now && { perf: { now: options.now }, ttlResolution: 0 }),
      })
    }
  }

  async get(key: DekCacheKey): Promise<CacheHit | undefined> {
    return this.lookup(key)
  }

  /** get() without a promise, for the tiered cache in front of it (an L1 hit is the hot path). */
  lookup(key: DekCacheKey): CacheHit | undefined {
    const entry = this.entries?.get(entryKey(key))
    return entry && { plaintext: Buffer.from(entry.plaintext, 'latin1'), version: entry.version, level: 'l1' }
  }

  /** `ttlMs` shortens the entry's life below the cache's TTL (an entry copied from L2 keeps its expiry). */
  async set(key: DekCacheKey, dek: CachedDek, options: { ttlMs?: number } = {}): Promise<void> {
    this.store(key, dek, options)
  }

  /** set() without a promise. */
  store(key: DekCacheKey, dek: CachedDek, options: { ttlMs?: number } = {}): void {
    if (!this.entries || (options.ttlMs !== undefined && options.ttlMs <= 0)) return
    const ttl = options.ttlMs === undefined ? undefined : Math.min(options.ttlMs, this.entries.ttl)
    this.entries.set(entryKey(key), { alias: key.alias, plaintext: dek.plaintext.toString('latin1'), version: dek.version }, ttl === undefined ? undefined : { ttl })
  }

  async delete(key: DekCacheKey): Promise<void> {
    this.entries?.delete(entryKey(key))
  }

  async purge(alias: string): Promise<void> {
    if (!this.entries) return
    for (const [key, entry] of this.entries.entries()) if (entry.alias === alias) this.entries.delete(key)
  }

  status(): 'ok' | 'disabled' {
    return this.entries ? 'ok' : 'disabled'
  }

  async close(): Promise<void> {
    this.entries?.clear()
  }
}

/** A digest keeps entry keys small whatever the size of the context. */
function entryKey(key: DekCacheKey): string {
  return hashInput().utf8(key.wrappedKey).byte(0).bytes(key.aad).sha256('base64url')
}
