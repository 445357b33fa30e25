/** Builds the DEK cache from settings: L1 alone, or L1 in front of the shared Redis L2. */
import type { Metrics } from '../metrics/metrics.js'
import type { KeyProvider } from '../providers/key-provider.js'
import { MemoryDekCache } from './memory-cache.js'
import { createRedisClient, type RedisConnectionOptions } from './redis-connection.js'
import { RedisDekStore, type RedisDekStoreOptions } from './redis-store.js'
import { TieredDekCache } from './tiered-cache.js'

export interface DekCacheSettings {
  readonly l1: { readonly maxEntries: number; readonly ttlSeconds: number }
  /** Absent: no L2. */
  readonly redis?: {
    readonly connection: RedisConnectionOptions
    readonly kek: KeyProvider
  } & Omit<RedisDekStoreOptions, 'redis' | 'kek' | 'metrics'>
  readonly metrics?: Metrics
}

export function createDekCache(settings: DekCacheSettings): TieredDekCache {
  const l1 = new MemoryDekCache(settings.l1)
  if (!settings.redis) return new TieredDekCache({ l1, ...(settings.metrics && { metrics: settings.metrics }) })
  const { connection, ...store } = settings.redis
  const l2 = new RedisDekStore({
    ...store,
    redis: createRedisClient({ ...connection, autoPipelining: true }),
    ...(settings.metrics && { metrics: settings.metrics }),
  })
  return new TieredDekCache({ l1, l2, ...(settings.metrics && { metrics: settings.metrics }), ...(store.now && { now: store.now }) })
}
