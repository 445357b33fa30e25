/**
 * Fingerprints of wrapped keys for the audit trail. A wrapped key is not secret the way a DEK is, but
 * it is what a caller presents to get the DEK back, so the trail must not hold it. An HMAC under a
 * per-deployment key identifies the same wrapped key across entries, instances and restarts, and
 * tells someone without that key nothing: not the wrapped key, nor whether two trails share keys.
 */
import { createHmac } from 'node:crypto'

export const FINGERPRINT_KEY_MIN_BYTES = 32
const FINGERPRINT_BYTES = 16

/** HMAC-SHA256(key, wrappedKey) truncated to 16 bytes, base64url (22 characters). */
export function fingerprintWrappedKey(key: Buffer, wrappedKey: string): string {
  if (key.length < FINGERPRINT_KEY_MIN_BYTES) throw new RangeError(`The fingerprint key must be at least ${FINGERPRINT_KEY_MIN_BYTES} bytes.`)
  return createHmac('sha256', key).update(wrappedKey, 'utf8').digest().subarray(0, FINGERPRINT_BYTES).toString('base64url')
}

/** Reads a fingerprint key given as base64 or base64url (e.g. `openssl rand -base64 32`), for config validation. */
export function parseFingerprintKey(value: string): Buffer | { error: string } {
  const text = value.trim()
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return { error: 'must be base64' }
  const key = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
  if (key.length < FINGERPRINT_KEY_MIN_BYTES) return { error: `must decode to at least ${FINGERPRINT_KEY_MIN_BYTES} bytes (e.g. openssl rand -base64 32)` }
  return key
}
