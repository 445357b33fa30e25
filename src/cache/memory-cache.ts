/** L1: an in-process LRU with a TTL, bounded by entries. */
import { LRUCache } from 'lru-cache'
import { createHash } from 'node:crypto'
import type { CachedDek, CacheHit, DekCache, DekCacheKey } from './dek-cache.js'

/**
 * An entry is one flat one-byte string: the alias's number (2 bytes), the KEK version (4 bytes,
 * big-endian), then the DEK's bytes, each byte one latin1 character. Not the Buffer the DEK came in:
 * a small Buffer is a slice of an 8 KiB slab shared with the request's other short-lived buffers, and
 * a cached slice keeps the whole slab alive (94 MB of retained slabs with 100,000 DEKs). Not an object
 * holding the alias, the version and the DEK as a string either: that entry, with its base64url key,
 * took 206 bytes of heap per DEK, this one ~150, and one object fewer for each major GC to mark. The
 * key is the SHA-256 digest as 32 latin1 characters.
 */
const HEADER_CHARS = 6
const MAX_VERSION = 0xffff_ffff
/** Alias numbers are two bytes. */
const ALIAS_NUMBERS = 0x1_0000

export class MemoryDekCache implements DekCache {
  private readonly entries: LRUCache<string, string> | undefined
  /** Each alias's number, as its entries carry it; aliases are configuration, so this stays small. */
  private readonly aliasNumbers = new Map<string, number>()

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
    if (entry === undefined) return undefined
    // The DEK in memory of its own (as randomBytes gives it), not in Node's shared slab.
    const plaintext = Buffer.allocUnsafeSlow(entry.length - HEADER_CHARS)
    plaintext.write(entry.substring(HEADER_CHARS), 'latin1')
    return { plaintext, version: entryVersion(entry), level: 'l1' }
  }

  /** `ttlMs` shortens the entry's life below the cache's TTL (an entry copied from L2 keeps its expiry). */
  async set(key: DekCacheKey, dek: CachedDek, options: { ttlMs?: number } = {}): Promise<void> {
    this.store(key, dek, options)
  }

  /** set() without a promise. */
  store(key: DekCacheKey, dek: CachedDek, options: { ttlMs?: number } = {}): void {
    if (!this.entries || (options.ttlMs !== undefined && options.ttlMs <= 0)) return
    // Versions are non-negative integers below 2^32 (a wrapped key's has at most 9 digits); anything
    // else is not cached rather than cached wrong.
    if (!Number.isInteger(dek.version) || dek.version < 0 || dek.version > MAX_VERSION) return
    const aliasNumber = this.aliasNumber(key.alias)
    if (aliasNumber === undefined) return
    const bytes = Buffer.allocUnsafe(HEADER_CHARS + dek.plaintext.length)
    bytes.writeUInt16BE(aliasNumber, 0)
    bytes.writeUInt32BE(dek.version, 2)
    dek.plaintext.copy(bytes, HEADER_CHARS)
    const entry = bytes.toString('latin1')
    bytes.fill(0)
    const ttl = options.ttlMs === undefined ? undefined : Math.min(options.ttlMs, this.entries.ttl)
    this.entries.set(entryKey(key), entry, ttl === undefined ? undefined : { ttl })
  }

  async delete(key: DekCacheKey): Promise<void> {
    this.entries?.delete(entryKey(key))
  }

  async purge(alias: string): Promise<void> {
    const aliasNumber = this.aliasNumbers.get(alias)
    if (!this.entries || aliasNumber === undefined) return
    for (const [key, entry] of this.entries.entries()) if (entryAliasNumber(entry) === aliasNumber) this.entries.delete(key)
  }

  status(): 'ok' | 'disabled' {
    return this.entries ? 'ok' : 'disabled'
  }

  async close(): Promise<void> {
    this.entries?.clear()
  }

  private aliasNumber(alias: string): number | undefined {
    let number = this.aliasNumbers.get(alias)
    if (number === undefined && this.aliasNumbers.size < ALIAS_NUMBERS) this.aliasNumbers.set(alias, (number = this.aliasNumbers.size))
    return number
  }
}

function entryAliasNumber(entry: string): number {
  return (entry.charCodeAt(0) << 8) | entry.charCodeAt(1)
}

function entryVersion(entry: string): number {
  return ((entry.charCodeAt(2) << 24) | (entry.charCodeAt(3) << 16) | (entry.charCodeAt(4) << 8) | entry.charCodeAt(5)) >>> 0
}

/** A digest keeps entry keys small whatever the size of the context. */
const SEPARATOR = Buffer.from([0])

function entryKey(key: DekCacheKey): string {
  return createHash('sha256').update(key.wrappedKey, 'utf8').update(SEPARATOR).update(key.aad).digest('binary')
}
