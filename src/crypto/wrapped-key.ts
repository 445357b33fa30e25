/**
 * The wrapped key as clients hold it: `kw1.<version>.<ciphertext>`.
 *   kw1         format version of this envelope
 *   version     the KEK version that wrapped it (decimal, no leading zeros)
 *   ciphertext  the provider's ciphertext, unpadded base64url
 * The version is readable so that unwrap can refuse a disabled version and rewrap can skip work
 * without a provider call; it is authenticated by the provider's ciphertext, not by this string.
 */
import { decodeBase64UrlStrict } from './base64.js'

export const WRAPPED_KEY_FORMAT = 'kw1'
const PATTERN = /^kw1\.([1-9][0-9]{0,8})\.([A-Za-z0-9_-]+)$/

export interface WrappedKey {
  readonly version: number
  readonly ciphertext: Buffer
}

export function formatWrappedKey(key: WrappedKey): string {
  return `${WRAPPED_KEY_FORMAT}.${key.version}.${key.ciphertext.toString('base64url')}`
}

/** Parses a wrapped key; undefined when it is not one (checked without any key: invalid_wrapped_key). */
export function parseWrappedKey(text: string): WrappedKey | undefined {
  const match = PATTERN.exec(text)
  if (!match) return undefined
  const ciphertext = decodeBase64UrlStrict(match[2]!)
  if (!ciphertext || ciphertext.length === 0) return undefined
  return { version: Number(match[1]), ciphertext }
}
