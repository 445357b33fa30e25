/**
 * Unwraps that failed authentication, remembered briefly so that presenting one again costs no
 * provider call. Remembered by an HMAC (under a key of this process) of alias, wrapped key and AAD:
 * nothing presented, the context included, is kept as it was sent.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'

export const FAILED_UNWRAP_TTL_MS = 60_000
const MAX_REMEMBERED = 100_000

export class FailedUnwraps {
  private readonly key = randomBytes(32)
  /** Made at the first failure: lru-cache allocates its arrays for all MAX_REMEMBERED entries up front. */
  private remembered: LRUCache<string, true> | undefined

  has(alias: string, wrappedKey: string, aad: Buffer): boolean {
    return this.remembered?.has(this.idOf(alias, wrappedKey, aad)) ?? false
  }

  remember(alias: string, wrappedKey: string, aad: Buffer): void {
    this.remembered ??= new LRUCache<string, true>({ max: MAX_REMEMBERED, ttl: FAILED_UNWRAP_TTL_MS })
    this.remembered.set(this.idOf(alias, wrappedKey, aad), true)
  }

  private idOf(alias: string, wrappedKey: string, aad: Buffer): string {
    return createHmac('sha256', this.key).update(alias).update('\0').update(wrappedKey).update('\0').update(aad).digest('base64url')
  }
}
