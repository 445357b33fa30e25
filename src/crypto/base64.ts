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

/** Decodes canonical unpadded base64url; undefined for anything else. */
export function decodeBase64UrlStrict(text: string): Buffer | undefined {
  if (!URL_SAFE.test(text) || text.length % 4 === 1) return undefined
  const bytes = Buffer.from(text, 'base64url')
  return bytes.toString('base64url') === text ? bytes : undefined
}
