/**
 * Whether the V8 heap this process was given can hold what the configuration asks it to keep. The L1
 * cache is the one large resident: about 180 bytes a DEK (measured with 100,000 entries and forced
 * collections), counted at 512 for the garbage between collections, over ~64 MiB for the process at
 * rest. A heap too small for a full cache would run out of memory under load, hours after start;
 * refusing at start says which two settings to reconcile.
 */
import type { Config } from './config.js'

const PROCESS_AT_REST_BYTES = 64 * 1024 * 1024
const HEAP_BYTES_PER_CACHED_DEK = 512

export function requiredHeapBytes(config: Pick<Config, 'cache'>): number {
  // A TTL of 0 turns the in-process cache off, whatever its size.
  const entries = config.cache.ttlSeconds > 0 ? config.cache.maxEntries : 0
  return PROCESS_AT_REST_BYTES + HEAP_BYTES_PER_CACHED_DEK * entries
}

/**
 * A message naming the settings when `heapLimitBytes` is too small: V8's heap_size_limit, which is
 * the old space (--max-old-space-size) plus the young generation (3 × --max-semi-space-size).
 */
export function heapBudgetViolation(config: Pick<Config, 'cache'>, heapLimitBytes: number): string | undefined {
  const required = requiredHeapBytes(config)
  if (heapLimitBytes >= required) return undefined
  const mebibytes = (bytes: number) => Math.ceil(bytes / 1048576)
  return (
    `KEYWRAP_CACHE_MAX_ENTRIES=${config.cache.maxEntries} needs a V8 heap of at least ${mebibytes(required)} MiB, ` +
    `and this process's heap limit is ${mebibytes(heapLimitBytes)} MiB (old space plus young generation): ` +
    `raise --max-old-space-size in NODE_OPTIONS (and the instance's memory), or lower KEYWRAP_CACHE_MAX_ENTRIES.`
  )
}
