/**
 * A KeyProvider holds one key-encryption key (KEK) and never lets it out. keywrap's operations only
 * ever ask it to encrypt a DEK under the primary version, decrypt a DEK, and describe the versions.
 */

import { KeywrapError } from '../errors.js'

export type KeyVersionState = 'ENABLED' | 'DISABLED' | 'DESTROY_SCHEDULED' | 'DESTROYED'

/** Only an ENABLED version encrypts or decrypts: otherwise key_version_destroyed or key_version_not_enabled. */
export function assertUsableVersion(version: number, state: KeyVersionState): void {
  if (state === 'ENABLED') return
  if (state === 'DESTROYED') throw new KeywrapError('key_version_destroyed', `Key version ${version} is destroyed.`)
  throw new KeywrapError('key_version_not_enabled', `Key version ${version} is ${state}.`)
}

export interface KeyVersionInfo {
  /** Version number, 1-based; the number recorded in a wrapped key. */
  readonly version: number
  /** Provider's full name of the version (a Cloud KMS CryptoKeyVersion name, or local://NAME/versions/N). */
  readonly name: string
  readonly state: KeyVersionState
  readonly createTime?: string
}

export interface KeyDescription {
  /** Provider URI from configuration (local://NAME or gcp-kms://projects/…/cryptoKeys/…). */
  readonly uri: string
  readonly provider: 'local' | 'gcp-kms'
  readonly primaryVersion: number
  readonly versions: readonly KeyVersionInfo[]
  /** Extra provider facts (protection level, rotation period) shown by GET /v1/keys/{alias}. */
  readonly attributes?: Readonly<Record<string, string>>
  /** When this description was last read from the provider (ISO 8601). */
  readonly refreshedAt: string
}

export interface EncryptResult {
  readonly ciphertext: Buffer
  /** The version that encrypted, as the provider reports it (not as the last refresh believed). */
  readonly version: number
}

export interface DecryptResult {
  readonly plaintext: Buffer
  /** The version that decrypted, when the provider can tell (local can; Cloud KMS does not say). */
  readonly version?: number
}

export interface KeyProvider {
  readonly uri: string
  /** Encrypt under the primary version, binding `aad` as additional authenticated data. */
  encrypt(plaintext: Buffer, aad: Buffer): Promise<EncryptResult>
  /**
   * Decrypt a ciphertext produced by encrypt() with the same `aad`. `version` is the version the
   * wrapped key claims; providers that embed the version in the ciphertext check the claim.
   * Throws KeywrapError cannot_unwrap when authentication fails.
   */
  decrypt(ciphertext: Buffer, aad: Buffer, version: number): Promise<DecryptResult>
  /** The description from the last refresh; synchronous so the hot path never waits on the provider. */
  describe(): KeyDescription
  /** Re-read versions, states and primary from the source. */
  refresh(): Promise<KeyDescription>
  /**
   * What tells this KEK apart from others of the same URI, never secret (default: the URI). The shared
   * cache names its epoch secrets after it, so deployments with different KEKs on one Redis never meet.
   */
  identity?(): string
  /** A real encrypt/decrypt round trip (for /readyz?deep=true); throws when the provider is not usable. */
  probe(): Promise<void>
  close(): Promise<void>
}
