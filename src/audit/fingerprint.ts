/**
 * Fingerprints of wrapped keys for the audit trail. A wrapped key is not secret the way a DEK is, but
 * it is what a caller presents to get the DEK back, so the trail must not hold it. An HMAC under a
 * per-deployment key identifies the same wrapped key across entries, instances and restarts, and
 * tells someone without that key nothing: not the wrapped key, nor whether two trails share keys.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { FINGERPRINT_KEY_MIN_BYTES } from '../config/fingerprint-key.js'

const FINGERPRINT_BYTES = 16

/** HMAC-SHA256(key, wrappedKey) truncated to 16 bytes, base64url (22 characters). */
export function fingerprintWrappedKey(key: Buffer, wrappedKey: string): string {
  if (key.length < FINGERPRINT_KEY_MIN_BYTES) throw new RangeError(`The fingerprint key must be at least ${FINGERPRINT_KEY_MIN_BYTES} bytes.`)
  return fingerprintUnder(createSecretKey(key), wrappedKey)
}

function fingerprintUnder(key: KeyObject, wrappedKey: string): string {
  return createHmac('sha256', key).update(wrappedKey, 'utf8').digest().subarray(0, FINGERPRINT_BYTES).toString('base64url')
}

/**
 * fingerprintWrappedKey() under one key, remembering recent answers: a hot DEK is presented over and
 * over, and its HMAC (about 2 µs) was a twentieth of the CPU of an L1-hit unwrap. Only wrapped keys of
 * ordinary size are remembered, so the memory stays bounded (about 3 MiB when full).
 */
export class WrappedKeyFingerprints {
  private readonly recent: LRUCache<string, string>
  private readonly key: KeyObject

  constructor(key: Buffer, options: { remembered?: number } = {}) {
    if (key.length < FINGERPRINT_KEY_MIN_BYTES) throw new RangeError(`The fingerprint key must be at least ${FINGERPRINT_KEY_MIN_BYTES} bytes.`)
    this.recent = new LRUCache({ max: options.remembered ?? 10_000 })
    this.key = createSecretKey(key)
  }

  of(wrappedKey: string): string {
    let fingerprint = this.recent.get(wrappedKey)
    if (fingerprint === undefined) {
      fingerprint = this.ofNew(wrappedKey)
      if (wrappedKey.length <= REMEMBERED_MAX_CHARS) this.recent.set(wrappedKey, fingerprint)
    }
    return fingerprint
  }

  /** For a wrapped key just produced: computed, not looked up nor remembered. */
  ofNew(wrappedKey: string): string {
    return fingerprintUnder(this.key, wrappedKey)
  }
}

const REMEMBERED_MAX_CHARS = 256
