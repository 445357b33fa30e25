/** L1: an in-process LRU with a TTL, bounded by entries. */
import { hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { CachedDek, CacheHit, DekCache, DekCacheKey } from './dek-cache.js'
import { fromLatin1String, toLatin1String } from './dek-as-latin1-string.js'

interface Entry {
  readonly alias: string
  readonly version: number
  /** The DEK's bytes, one character each (dek-as-latin1-string.ts). */
  readonly plaintext: string
  /** What it was cached under (see TieredDekCache); served only to a lookup with the same stamp. */
  readonly stamp: string | undefined
}

/** Versions are uint32s; anything else is not cached. */
const MAX_VERSION = 0xffff_ffff

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

  async get(key: DekCacheKey, stamp?: string): Promise<CacheHit | undefined> {
    const entry = this.entries?.get(entryKey(key))
    if (entry === undefined || entry.stamp !== stamp) return undefined
    return { plaintext: fromLatin1String(entry.plaintext), version: entry.version, level: 'l1' }
  }

  /** `ttlMs` shortens the entry's life below the cache's TTL (an entry copied from L2 keeps its expiry). */
  async set(key: DekCacheKey, dek: CachedDek, options: { ttlMs?: number; stamp?: string } = {}): Promise<void> {
    if (!this.entries || (options.ttlMs !== undefined && options.ttlMs <= 0)) return
    if (!Number.isInteger(dek.version) || dek.version < 0 || dek.version > MAX_VERSION) return
    const ttl = options.ttlMs === undefined ? undefined : Math.min(options.ttlMs, this.entries.ttl)
    const entry = { alias: key.alias, version: dek.version, plaintext: toLatin1String(dek.plaintext), stamp: options.stamp }
    this.entries.set(entryKey(key), entry, ttl === undefined ? undefined : { ttl })
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
  return hash('sha256', Buffer.concat([Buffer.from(key.wrappedKey, 'utf8'), SEPARATOR, key.aad]), 'base64url')
}

const SEPARATOR = Buffer.from([0])
