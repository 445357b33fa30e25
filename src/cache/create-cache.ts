/** Builds the DEK cache from settings: L1 alone, or L1 in front of the shared Redis L2. */
import type { Metrics } from '../metrics/metrics.js'
import type { KeyProvider } from '../providers/key-provider.js'
import { MemoryDekCache } from './memory-cache.js'
import type { RedisConnectionOptions } from './redis-connection.js'
import type { RedisDekStoreOptions } from './redis-store.js'
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

/** ioredis and the L2 store are loaded only when Redis is configured: the embedded default starts without them. */
export async function createDekCache(settings: DekCacheSettings): Promise<TieredDekCache> {
  const l1 = new MemoryDekCache(settings.l1)
  if (!settings.redis) return new TieredDekCache({ l1, ...(settings.metrics && { metrics: settings.metrics }) })
  const [{ createRedisClient }, { RedisDekStore }] = await Promise.all([import('./redis-connection.js'), import('./redis-store.js')])
  const { connection, ...store } = settings.redis
  const l2 = new RedisDekStore({
    ...store,
    redis: createRedisClient({ ...connection, autoPipelining: true }),
    ...(settings.metrics && { metrics: settings.metrics }),
  })
  return new TieredDekCache({ l1, l2, ...(settings.metrics && { metrics: settings.metrics }), ...(store.now && { now: store.now }) })
}
