/** KEYWRAP_AUDIT_FINGERPRINT_KEY: the HMAC key of the audit trail's wrapped-key fingerprints. */

export const FINGERPRINT_KEY_MIN_BYTES = 32

/** Reads a fingerprint key given as base64 or base64url (e.g. `openssl rand -base64 32`), for config validation. */
export function parseFingerprintKey(value: string): Buffer | { error: string } {
  const text = value.trim()
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return { error: 'must be base64' }
  const key = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
  if (key.length < FINGERPRINT_KEY_MIN_BYTES) return { error: `must decode to at least ${FINGERPRINT_KEY_MIN_BYTES} bytes (e.g. openssl rand -base64 32)` }
  return key
}
