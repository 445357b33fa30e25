/**
 * Tokens already verified, remembered by their SHA-256 so that a busy client costs a hash rather than
 * a signature check. An entry never outlives the token's `exp`, checked at lookup with the caller's
 * clock; the least recently used entries go first when the cache is full.
 */
import { hash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Principal } from './principal.js'

interface Entry {
  readonly principal: Principal
  /** Milliseconds since the epoch; the entry is void from this instant on. */
  readonly expiresAt: number
}

export class VerifiedTokenCache {
  private readonly entries: LRUCache<string, Entry> | undefined

  constructor(maxEntries: number) {
    this.entries = maxEntries > 0 ? new LRUCache({ max: maxEntries }) : undefined
  }

  static digest(token: string): string {
    return hash('sha256', token, 'base64url')
  }

  get(digest: string, now: number): Principal | undefined {
    const entry = this.entries?.get(digest)
    if (!entry) return undefined
    if (now < entry.expiresAt) return entry.principal
    this.entries!.delete(digest)
    return undefined
  }

  set(digest: string, principal: Principal, expiresAt: number, now: number): void {
    if (this.entries && expiresAt > now) this.entries.set(digest, { principal, expiresAt })
  }

  get size(): number {
    return this.entries?.size ?? 0
  }

  clear(): void {
    this.entries?.clear()
  }
}
