// Cloud KMS resource names and the INVALID_ARGUMENT messages the real service
// gives for malformed ones.
import { KmsError } from './errors.js'

const PROJECT = '([^/]{1,100})'
const ID = '([a-zA-Z0-9_-]{1,63})'
const CRYPTO_KEY_PATTERN = `projects/${PROJECT}/locations/${ID}/keyRings/${ID}/cryptoKeys/${ID}`
const CRYPTO_KEY_VERSION_PATTERN = `${CRYPTO_KEY_PATTERN}/cryptoKeyVersions/${ID}`
const CRYPTO_KEY_RE = new RegExp(`^${CRYPTO_KEY_PATTERN}$`)
const CRYPTO_KEY_VERSION_RE = new RegExp(`^(${CRYPTO_KEY_PATTERN})/cryptoKeyVersions/${ID}$`)

export interface VersionRef {
  keyName: string
  version: number
}

export function versionName(keyName: string, version: number): string {
  return `${keyName}/cryptoKeyVersions/${version}`
}

export function isCryptoKeyName(name: string): boolean {
  return CRYPTO_KEY_RE.test(name)
}

/** Parses a CryptoKeyVersion name; undefined if `name` is not one. */
export function parseVersionName(name: string): VersionRef | undefined {
  const match = CRYPTO_KEY_VERSION_RE.exec(name)
  const keyName = match?.[1]
  const versionId = match?.[6]
  if (keyName === undefined || versionId === undefined) return undefined
  // Well-formed but non-numeric ids are valid names that simply never exist (version 0).
  return { keyName, version: /^[1-9][0-9]{0,8}$/.test(versionId) ? Number(versionId) : 0 }
}

/** For RPCs that take a CryptoKey (Decrypt, GetCryptoKey, ListCryptoKeyVersions). */
export function requireCryptoKeyName(name: string): string {
  if (isCryptoKeyName(name)) return name
  if (parseVersionName(name)) {
    throw KmsError.invalidArgument(`${name} is not a valid resource type for this request.`)
  }
  throw KmsError.invalidArgument(`Resource name '${name}' does not match pattern '${CRYPTO_KEY_PATTERN}'.`)
}

export function requireVersionName(name: string): VersionRef {
  const ref = parseVersionName(name)
  if (ref) return ref
  throw KmsError.invalidArgument(`Resource name '${name}' does not match pattern '${CRYPTO_KEY_VERSION_PATTERN}'.`)
}

/** Encrypt accepts either a CryptoKey (use its primary) or a specific CryptoKeyVersion. */
export function requireKeyOrVersionName(name: string): { keyName: string; version?: number } {
  if (isCryptoKeyName(name)) return { keyName: name }
  const ref = parseVersionName(name)
  if (ref) return ref
  throw KmsError.invalidArgument(`Resource name [${name}] does not match any known resource name pattern.`)
}
