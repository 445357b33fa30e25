/**
 * The cache of unwrapped DEKs, so a repeated unwrap costs no provider round trip. An entry is found by
 * everything that authenticates a wrapped key (alias, wrapped key, context), and remembers the KEK
 * version, so that an entry whose version stops being ENABLED can be refused.
 */
import type { CacheLevel } from '../audit/audit-entry.js'

export interface DekCacheKey {
  readonly alias: string
  readonly wrappedKey: string
  /** The canonical AAD (alias and context); see crypto/context. */
  readonly aad: Buffer
}

export interface CachedDek {
  readonly plaintext: Buffer
  readonly version: number
}

export interface CacheHit extends CachedDek {
  readonly level: Exclude<CacheLevel, 'provider' | 'none'>
}

/** Why a cache is degraded: Redis cannot be reached, or the cache KEK refuses (or cannot give) the epoch secret. */
export type CacheDegradedReason = 'redis_unavailable' | 'cache_kek_refused' | 'cache_kek_unavailable'

export interface DekCache {
  get(key: DekCacheKey): Promise<CacheHit | undefined>
  set(key: DekCacheKey, dek: CachedDek): Promise<void>
  /** Drop the entry (its version was found not ENABLED). */
  delete(key: DekCacheKey): Promise<void>
  /** Drop every entry of one alias. */
  purge(alias: string): Promise<void>
  /** What /readyz reports. */
  status(): 'ok' | 'degraded' | 'disabled'
  /** While degraded, why (/readyz says it). */
  degradedReason?(): CacheDegradedReason | undefined
  close(): Promise<void>
}
