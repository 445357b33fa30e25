/**
 * Strict base64. Node's decoder ignores stray characters and non-zero padding bits, so two different
 * strings can decode to the same bytes; a key service must accept exactly one spelling of each value.
 */

const STANDARD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const URL_SAFE = /^[A-Za-z0-9_-]*$/

/** Decodes canonical standard base64 (with padding); undefined for anything else. */
export function decodeBase64Strict(text: string): Buffer | undefined {
  if (!STANDARD.test(text)) return undefined
  const bytes = Buffer.from(text, 'base64')
  return bytes.toString('base64') === text ? bytes : undefined
}

/** The base64url digits in order of value. */
export const URL_SAFE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * Decodes canonical unpadded base64url; undefined for anything else. Canonical here means: the last
 * character of a 2- or 3-character tail leaves its 4 or 2 unused low bits zero (what re-encoding
 * the bytes would give), checked without re-encoding, as this runs on every unwrap.
 */
export function decodeBase64UrlStrict(text: string): Buffer | undefined {
  const tail = text.length % 4
  if (tail === 1 || !URL_SAFE.test(text)) return undefined
  if (tail !== 0 && (URL_SAFE_ALPHABET.indexOf(text[text.length - 1]!) & (tail === 2 ? 0b1111 : 0b11)) !== 0) return undefined
  return Buffer.from(text, 'base64url')
}
