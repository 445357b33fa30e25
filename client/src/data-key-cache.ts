/**
 * Plaintext DEKs kept for reuse within limits: an age, a number of messages and a number of bytes per
 * DEK (as the AWS Encryption SDK's caching materials manager), and a number of DEKs. A DEK that would
 * go past a limit is dropped and the next use fetches another. Concurrent first uses of one entry make
 * one fetch; they all get its DEK, or its error.
 */
import type { KeyObject } from 'node:crypto'

export interface CacheLimits {
  /** How long a DEK is used after it was fetched (default 300,000 ms: 5 minutes). */
  maxAgeMs?: number
  /** Messages (or streams) per DEK (default 100,000). */
  maxMessages?: number
  /** Plaintext bytes per DEK (default 2^36: 64 GiB). */
  maxBytes?: number
  /** DEKs held at once, one per context or wrapped key (default 1,000). */
  maxEntries?: number
}

export interface DataKey {
  readonly key: KeyObject
  readonly wrappedKey: string
}

/** One cached DEK and what is left of its limits. */
export interface CachedKey extends DataKey {
  readonly expiresAt: number
  messagesLeft: number
  bytesLeft: number
}

const DEFAULTS = { maxAgeMs: 300_000, maxMessages: 100_000, maxBytes: 2 ** 36, maxEntries: 1000 }

export class DataKeyCache {
  readonly #limits: Required<CacheLimits>
  readonly #entries = new Map<string, CachedKey | Promise<CachedKey>>()
  readonly #now: () => number

  constructor(limits: CacheLimits = {}, now: () => number = Date.now) {
    this.#limits = { ...DEFAULTS, ...definedOnly(limits) }
    for (const [name, value] of Object.entries(this.#limits)) {
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`cache.${name} must be a whole number of 0 or more`)
    }
    this.#now = now
  }

  /**
   * The DEK cached under `id` with one message and `bytes` counted against it, or a new one from
   * `fetch`. A new DEK always serves the call that fetched it, even past the limits (a message larger
   * than maxBytes gets a DEK of its own).
   */
  async use(id: string, bytes: number, fetch: () => Promise<DataKey>): Promise<CachedKey> {
    for (;;) {
      const slot = this.#entries.get(id)
      if (slot instanceof Promise) {
        await slot
        continue
      }
      if (slot && this.#take(slot, bytes)) return slot
      if (slot) this.#entries.delete(id)
      const pending = fetch().then((key): CachedKey => ({
        ...key,
        expiresAt: this.#now() + this.#limits.maxAgeMs,
        messagesLeft: this.#limits.maxMessages,
        bytesLeft: this.#limits.maxBytes,
      }))
      this.#store(id, pending)
      let entry: CachedKey
      try {
        entry = await pending
      } catch (error) {
        if (this.#entries.get(id) === pending) this.#entries.delete(id)
        throw error
      }
      entry.messagesLeft--
      entry.bytesLeft -= bytes
      const keep = this.#entries.get(id) === pending && this.#usable(entry)
      if (keep) this.#entries.set(id, entry)
      else if (this.#entries.get(id) === pending) this.#entries.delete(id)
      return entry
    }
  }

  /** Counts `bytes` more against a DEK in use (a stream's segments as they pass). */
  charge(entry: CachedKey, bytes: number): void {
    entry.bytesLeft -= bytes
  }

  get size(): number {
    return this.#entries.size
  }

  clear(): void {
    this.#entries.clear()
  }

  #take(entry: CachedKey, bytes: number): boolean {
    if (entry.messagesLeft < 1 || entry.bytesLeft < bytes || this.#now() >= entry.expiresAt) return false
    entry.messagesLeft--
    entry.bytesLeft -= bytes
    return true
  }

  #usable(entry: CachedKey): boolean {
    return entry.messagesLeft > 0 && entry.bytesLeft >= 0 && this.#now() < entry.expiresAt
  }

  #store(id: string, slot: Promise<CachedKey>): void {
    this.#entries.set(id, slot)
    while (this.#entries.size > Math.max(1, this.#limits.maxEntries)) this.#entries.delete(this.#entries.keys().next().value!)
  }
}

function definedOnly(limits: CacheLimits): CacheLimits {
  return Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined))
}
