/** App instances' caches for the tests: each its own Redis client, L1, metrics and provider count. */
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { MemoryDekCache } from '../../src/cache/memory-cache.js'
import { createRedisClient, type RedisClient, type RedisConnectionOptions } from '../../src/cache/redis-connection.js'
import { RedisDekStore, type RedisDekStoreOptions } from '../../src/cache/redis-store.js'
import { TieredDekCache } from '../../src/cache/tiered-cache.js'
import { encodeAad, type EncryptionContext } from '../../src/crypto/context.js'
import { Metrics } from '../../src/metrics/metrics.js'
import type { KeyProvider } from '../../src/providers/key-provider.js'
import { CountingProvider } from './counting-provider.js'

export interface Instance {
  readonly cache: TieredDekCache
  readonly store: RedisDekStore
  readonly redis: RedisClient
  readonly metrics: Metrics
  readonly kek: KeyProvider
}

export interface InstanceOptions extends Partial<Omit<RedisDekStoreOptions, 'redis' | 'kek' | 'metrics'>> {
  readonly url?: string
  readonly connection?: RedisConnectionOptions
  readonly kek?: KeyProvider
  /** L1 size; 0 turns L1 off. Default 100. */
  readonly l1Entries?: number
  /** Wait for the connection before returning; default true. */
  readonly waitReady?: boolean
}

const opened: Instance[] = []
const prefixesUsed = new Map<string, Set<string>>()
/** The KEK every instance gets unless a test gives one: one fleet, one KEK. */
export const fleetKekSecret = randomBytes(32)

/**
 * The command deadline of a test that is not about timeouts: a Redis answer late by real
 * milliseconds on a loaded machine must not turn a hit into a miss under a test's manual clock.
 */
export const GENEROUS_COMMAND_TIMEOUT_MS = 10_000

export async function startInstance(options: InstanceOptions): Promise<Instance> {
  const { url, connection, kek = new CountingProvider(fleetKekSecret), l1Entries = 100, waitReady = true, keyPrefix = 'kw:', ...store } = options
  if (url !== undefined) prefixesUsed.set(url, (prefixesUsed.get(url) ?? new Set()).add(keyPrefix))
  // As production configures the DEK cache's client (createDekCache).
  const redis = createRedisClient({ commandTimeoutMs: GENEROUS_COMMAND_TIMEOUT_MS, ...(connection ?? { url }), autoPipelining: true })
  const metrics = new Metrics()
  const l2 = new RedisDekStore({ ...store, keyPrefix, redis, kek, metrics })
  if (waitReady) await ready(redis)
  const l1 = new MemoryDekCache({ maxEntries: l1Entries, ttlSeconds: 300, ...(store.now && { now: store.now }) })
  const instance = { cache: new TieredDekCache({ l1, l2, metrics, ...(store.now && { now: store.now }) }), store: l2, redis, metrics, kek }
  opened.push(instance)
  return instance
}

/** Closes every instance, then deletes what they left in a Redis that is still there. */
export async function closeInstances(): Promise<void> {
  await Promise.all(opened.splice(0).map((instance) => instance.cache.close()))
  for (const [url, prefixes] of prefixesUsed) {
    const redis = new Redis(url, { lazyConnect: true, retryStrategy: () => null, connectTimeout: 500, maxRetriesPerRequest: 0 })
    redis.on('error', () => undefined)
    try {
      await redis.connect()
      for (const prefix of prefixes) {
        const keys = await keysUnder(redis, prefix)
        if (keys.length > 0) await redis.del(...keys)
      }
      await redis.quit()
    } catch {
      redis.disconnect()
    }
  }
  prefixesUsed.clear()
}

export async function ready(redis: RedisClient, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return
  await Promise.race([
    once(redis, 'ready'),
    new Promise((_resolve, reject) => setTimeout(() => reject(new Error('Redis did not become ready')), timeoutMs).unref()),
  ])
}

/** A plain client for looking at (and tampering with) what the cache stored. */
export async function rawClient(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  redis.on('error', () => undefined)
  await redis.connect()
  return redis
}

export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys.sort()
}

export function dekKey(alias: string, context: EncryptionContext = {}, wrappedKey = randomBytes(60).toString('base64url')) {
  return { alias, wrappedKey, aad: encodeAad(alias, 1, context) }
}

export function newDek(version = 1) {
  return { plaintext: randomBytes(32), version }
}

/** A clock the test moves by hand (milliseconds). */
export function manualClock(start = Date.UTC(2030, 0, 1)) {
  const clock = { time: start, now: () => clock.time, advance: (ms: number) => void (clock.time += ms) }
  return clock
}

export async function counter(
  metric: { get(): Promise<{ values: { labels: object; value: number }[] }> },
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get()
  return values
    .filter((value) => Object.entries(labels).every(([name, expected]) => (value.labels as Record<string, unknown>)[name] === expected))
    .reduce((sum, value) => sum + value.value, 0)
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
