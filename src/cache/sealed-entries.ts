/**
 * The shared cache's entries of one alias in one scope (`<prefix>dek:<mac>`, TTL ttlMs): DEKs sealed
 * under the epoch's keys (see cache-crypto). Offline (Redis could not confirm the scope just now),
 * nothing is read or written.
 */
import type { Metrics } from '../metrics/metrics.js'
import { entryName, openEntry, sealEntry, type OpenedEntry } from './cache-crypto.js'
import type { CachedDek, DekCacheKey } from './dek-cache.js'
import type { ScopeResult } from './generations.js'
import type { GuardedRedis } from './guarded-redis.js'
import type { SharedEntries } from './tiered-cache.js'

export interface SealedEntriesOptions {
  readonly prefix: string
  readonly ttlMs: number
  readonly metrics?: Metrics
  readonly now: () => number
}

export class SealedEntries implements SharedEntries {
  readonly stamp: string

  constructor(
    private readonly redis: GuardedRedis,
    private readonly options: SealedEntriesOptions,
    private readonly found: ScopeResult,
  ) {
    this.stamp = found.scope.stamp
  }

  /** The entry, or undefined when absent, expired, or not sealed for its name with these keys (then it is deleted). */
  async get(key: DekCacheKey): Promise<OpenedEntry | undefined> {
    if (!this.found.online) return undefined
    const name = this.name(key)
    const read = await this.redis.run('get', (redis) => redis.getBuffer(name))
    if (!read.ok || !read.value) return undefined
    const entry = openEntry(this.found.scope.keys, name, read.value)
    if (!entry) this.options.metrics?.redisErrors.inc({ operation: 'authenticate' })
    if (!entry || entry.expiresAt <= this.options.now()) {
      await this.redis.run('delete', (redis) => redis.del(name))
      return undefined
    }
    return entry
  }

  async set(key: DekCacheKey, dek: CachedDek): Promise<void> {
    if (!this.found.online) return
    const name = this.name(key)
    const value = sealEntry(this.found.scope.keys, name, dek, this.options.now() + this.options.ttlMs)
    await this.redis.run('set', (redis) => redis.set(name, value, 'PX', this.options.ttlMs))
  }

  async delete(key: DekCacheKey): Promise<void> {
    if (!this.found.online) return
    const name = this.name(key)
    await this.redis.run('delete', (redis) => redis.del(name))
  }

  private name(key: DekCacheKey): string {
    return `${this.options.prefix}dek:${entryName(this.found.scope.keys, key, this.found.scope.generation)}`
  }
}
