// Asymmetric signing keys (purpose ASYMMETRIC_SIGN, EC_SIGN_P256_SHA256) with real P-256 key pairs
// from node:crypto, for AsymmetricSign and GetPublicKey.
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { p256 } from '@noble/curves/nist.js'
import { crc32c } from '../../../src/crypto/crc32c.js'
import { KmsError } from './errors.js'
import type { Int64Value, VersionState } from './messages.js'
import { isCryptoKeyName, requireVersionName, versionName } from './resource-names.js'

export const SIGNING_ALGORITHM = 'EC_SIGN_P256_SHA256'

interface SigningVersion {
  state: VersionState
  readonly privateKey: KeyObject
  readonly publicKeyPem: string
}

export interface AsymmetricSignRequest {
  name: string
  digest: { sha256?: Buffer | null; sha384?: Buffer | null; sha512?: Buffer | null; digest?: string } | null
  digestCrc32c: Int64Value | null
  data: Buffer
  dataCrc32c: Int64Value | null
}

export interface AsymmetricSignResponse {
  signature: Buffer
  signatureCrc32c: Int64Value
  verifiedDigestCrc32c: boolean
  verifiedDataCrc32c: boolean
  name: string
  protectionLevel: 'SOFTWARE'
}

export interface PublicKeyResponse {
  pem: string
  algorithm: typeof SIGNING_ALGORITHM
  pemCrc32c: Int64Value
  name: string
  protectionLevel: 'SOFTWARE'
}

export class SigningKeyStore {
  readonly #keys = new Map<string, SigningVersion[]>()

  /** Creates an EC_SIGN_P256_SHA256 key with `versions` ENABLED versions; returns the first version's name. */
  create(name: string, versions = 1): string {
    if (!isCryptoKeyName(name)) throw new Error(`Not a CryptoKey name: ${name}`)
    if (this.#keys.has(name)) throw new Error(`CryptoKey ${name} already exists`)
    this.#keys.set(
      name,
      Array.from({ length: versions }, () => newVersion()),
    )
    return versionName(name, 1)
  }

  /** Adds a version; returns its name. */
  addVersion(name: string): string {
    const versions = this.#mustGet(name)
    versions.push(newVersion())
    return versionName(name, versions.length)
  }

  setState(name: string, version: number, state: VersionState): void {
    const stored = this.#mustGet(name)[version - 1]
    if (!stored) throw new Error(`Unknown CryptoKeyVersion ${versionName(name, version)}`)
    stored.state = state
  }

  has(name: string): boolean {
    return this.#keys.has(name)
  }

  /** The version `name` names (a CryptoKeyVersion), or undefined when no signing key has it. */
  find(name: string): SigningVersion | undefined {
    const ref = requireVersionName(name)
    return this.#keys.get(ref.keyName)?.[ref.version - 1]
  }

  #mustGet(name: string): SigningVersion[] {
    const versions = this.#keys.get(name)
    if (!versions) throw new Error(`Unknown signing CryptoKey ${name}`)
    return versions
  }
}

/** AsymmetricSign of an EC_SIGN_P256_SHA256 version: the caller's SHA-256 digest, signed as it is (DER ECDSA). */
export function asymmetricSign(version: SigningVersion | undefined, req: AsymmetricSignRequest, verifyChecksums: boolean): AsymmetricSignResponse {
  if (!version) throw KmsError.notFound(req.name)
  if (version.state !== 'ENABLED') throw KmsError.versionNotEnabled(req.name, version.state)
  const digest = req.digest?.sha256
  if (!digest || digest.length !== 32) {
    throw KmsError.invalidArgument('The digest type does not match the algorithm of the key: EC_SIGN_P256_SHA256 needs digest.sha256 (32 bytes).')
  }
  let verifiedDigestCrc32c = false
  if (req.digestCrc32c && verifyChecksums) {
    if (Number(req.digestCrc32c.value) !== crc32c(digest)) throw KmsError.checksumMismatch('digest_crc32c', 'digest')
    verifiedDigestCrc32c = true
  }
  const signature = signDigest(version.privateKey, digest)
  return {
    signature,
    signatureCrc32c: { value: crc32c(signature) },
    verifiedDigestCrc32c,
    verifiedDataCrc32c: false,
    name: req.name,
    protectionLevel: 'SOFTWARE',
  }
}

export function getPublicKey(version: SigningVersion | undefined, name: string): PublicKeyResponse {
  if (!version) throw KmsError.notFound(name)
  return {
    pem: version.publicKeyPem,
    algorithm: SIGNING_ALGORITHM,
    pemCrc32c: { value: crc32c(Buffer.from(version.publicKeyPem, 'utf8')) },
    name,
    protectionLevel: 'SOFTWARE',
  }
}

function newVersion(): SigningVersion {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { state: 'ENABLED', privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() }
}

/**
 * ECDSA over a digest the caller computed, as Cloud KMS signs it. node:crypto signs only data it hashes
 * itself, so the signing is @noble/curves' (audited; a development dependency of this stand-in only),
 * with the key pair from node:crypto; node:crypto's verify('sha256', data, publicKey, signature)
 * accepts the result (kms-stand-in.test.ts checks it).
 */
function signDigest(privateKey: KeyObject, digest: Buffer): Buffer {
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url')
  return Buffer.from(p256.sign(digest, d, { prehash: false, format: 'der' }))
}
