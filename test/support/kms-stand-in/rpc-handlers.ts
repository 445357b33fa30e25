// The five implemented KeyManagementService RPCs as plain functions: decoded
// request in, response out, KmsError thrown for any gRPC error.
import { crc32c } from '../../../src/crypto/crc32c.js'
import { open, readHeader, seal } from './ciphertext.js'
import { AAD_MAX_BYTES, KmsError, PLAINTEXT_MAX_BYTES } from './errors.js'
import { cryptoKeyResource, cryptoKeyVersionResource, type KeyStore, type StoredKey, type StoredVersion } from './key-store.js'
import type {
  CryptoKeyResource,
  CryptoKeyVersionResource,
  DecryptRequest,
  DecryptResponse,
  EncryptRequest,
  EncryptResponse,
  GetRequest,
  Int64Value,
  ListCryptoKeyVersionsRequest,
  ListCryptoKeyVersionsResponse,
  VersionState,
} from './messages.js'
import { requireCryptoKeyName, requireKeyOrVersionName, requireVersionName, versionName } from './resource-names.js'

export interface RpcContext {
  store: KeyStore
  /** CryptoKey names every RPC is refused on, as if IAM denied the caller. */
  deniedKeys: ReadonlySet<string>
  /** False simulates a server that ignores request checksums (verified_* stay false). */
  verifyChecksums: boolean
}

export function encrypt(ctx: RpcContext, req: EncryptRequest): EncryptResponse {
  const ref = requireKeyOrVersionName(req.name)
  requireMaxLength('plaintext', req.plaintext, PLAINTEXT_MAX_BYTES)
  requireMaxLength('additional_authenticated_data', req.additionalAuthenticatedData, AAD_MAX_BYTES)
  const verifiedPlaintext = verifyChecksum(ctx, req.plaintextCrc32c, req.plaintext, 'plaintext')
  const verifiedAad = verifyChecksum(ctx, req.additionalAuthenticatedDataCrc32c, req.additionalAuthenticatedData, 'additional_authenticated_data')
  const key = findKey(ctx, ref.keyName, req.name, 'cloudkms.cryptoKeyVersions.useToEncrypt')
  const version = usableVersion(key, ref.version ?? key.primary, req.name)

  const ciphertext = seal(version.material, { keyId: key.keyId, version: version.version }, req.plaintext, req.additionalAuthenticatedData)
  return {
    name: versionName(key.name, version.version),
    ciphertext,
    ciphertextCrc32c: { value: crc32c(ciphertext) },
    verifiedPlaintextCrc32c: verifiedPlaintext,
    verifiedAdditionalAuthenticatedDataCrc32c: verifiedAad,
    protectionLevel: 'SOFTWARE',
  }
}

export function decrypt(ctx: RpcContext, req: DecryptRequest): DecryptResponse {
  const keyName = requireCryptoKeyName(req.name)
  requireMaxLength('additional_authenticated_data', req.additionalAuthenticatedData, AAD_MAX_BYTES)
  verifyChecksum(ctx, req.ciphertextCrc32c, req.ciphertext, 'ciphertext')
  verifyChecksum(ctx, req.additionalAuthenticatedDataCrc32c, req.additionalAuthenticatedData, 'additional_authenticated_data')
  const key = findKey(ctx, keyName, req.name, 'cloudkms.cryptoKeyVersions.useToDecrypt')

  const header = readHeader(req.ciphertext)
  if (!header) throw KmsError.invalidCiphertext()
  if (!header.keyId.equals(key.keyId)) throw KmsError.wrongKeyForCiphertext()
  if (!key.versions.has(header.version)) throw KmsError.invalidCiphertext()
  const version = usableVersion(key, header.version, versionName(key.name, header.version))

  const plaintext = open(version.material, req.ciphertext, req.additionalAuthenticatedData)
  if (!plaintext) throw KmsError.invalidCiphertext()
  return {
    plaintext,
    plaintextCrc32c: { value: crc32c(plaintext) },
    usedPrimary: version.version === key.primary,
    protectionLevel: 'SOFTWARE',
  }
}

export function getCryptoKey(ctx: RpcContext, req: GetRequest): CryptoKeyResource {
  const keyName = requireCryptoKeyName(req.name)
  return cryptoKeyResource(findKey(ctx, keyName, req.name, 'cloudkms.cryptoKeys.get'))
}

export function getCryptoKeyVersion(ctx: RpcContext, req: GetRequest): CryptoKeyVersionResource {
  const ref = requireVersionName(req.name)
  const key = findKey(ctx, ref.keyName, req.name, 'cloudkms.cryptoKeyVersions.get')
  const version = key.versions.get(ref.version)
  if (!version) throw KmsError.notFound(req.name)
  return cryptoKeyVersionResource(key, version)
}

export function listCryptoKeyVersions(ctx: RpcContext, req: ListCryptoKeyVersionsRequest): ListCryptoKeyVersionsResponse {
  const keyName = requireCryptoKeyName(req.parent)
  const key = findKey(ctx, keyName, req.parent, 'cloudkms.cryptoKeyVersions.list')
  const matches = [...key.versions.values()].filter(stateFilter(req.filter)).sort((a, b) => a.version - b.version)
  const offset = decodePageToken(req.pageToken)
  const pageSize = req.pageSize > 0 ? req.pageSize : matches.length
  const page = matches.slice(offset, offset + pageSize)
  const nextOffset = offset + page.length
  return {
    cryptoKeyVersions: page.map((v) => cryptoKeyVersionResource(key, v)),
    nextPageToken: nextOffset < matches.length ? encodePageToken(nextOffset) : '',
    totalSize: matches.length,
  }
}

function requireMaxLength(field: string, data: Uint8Array, max: number): void {
  if (data.length > max) throw KmsError.fieldTooLong(field, max, data.length)
}

/** True only when a checksum was sent and matched; a mismatch is INVALID_ARGUMENT. */
function verifyChecksum(ctx: RpcContext, sent: Int64Value | null, data: Uint8Array, field: string): boolean {
  if (!sent || !ctx.verifyChecksums) return false
  if (Number(sent.value) !== crc32c(data)) {
    throw KmsError.checksumMismatch(`${field}_crc32c`, field)
  }
  return true
}

/** Permission is checked before existence, so a denied caller cannot probe for keys. */
function findKey(ctx: RpcContext, keyName: string, requestedName: string, permission: string): StoredKey {
  if (ctx.deniedKeys.has(keyName)) throw KmsError.permissionDenied(permission, requestedName)
  const key = ctx.store.find(keyName)
  if (!key) throw KmsError.notFound(requestedName)
  return key
}

function usableVersion(key: StoredKey, version: number, requestedName: string): StoredVersion & { material: Buffer } {
  const stored = key.versions.get(version)
  if (!stored) throw KmsError.notFound(requestedName)
  if (stored.state !== 'ENABLED' || !stored.material) {
    throw KmsError.versionNotEnabled(versionName(key.name, version), stored.state)
  }
  return stored as StoredVersion & { material: Buffer }
}

/** Supports the filters clients realistically send: `state=X`, `state!=X`, `NOT state=X`. */
function stateFilter(filter: string): (v: StoredVersion) => boolean {
  const trimmed = filter.trim()
  if (trimmed === '') return () => true
  const match = /^(NOT\s+)?state\s*(=|!=|:)\s*([A-Z_]+)$/.exec(trimmed)
  if (!match) throw KmsError.invalidArgument(`Invalid filter: ${filter}`)
  const negate = Boolean(match[1]) !== (match[2] === '!=')
  const state = match[3] as VersionState
  return (v) => (v.state === state) !== negate
}

function encodePageToken(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString('base64url')
}

function decodePageToken(token: string): number {
  if (token === '') return 0
  const match = /^offset:(\d+)$/.exec(Buffer.from(token, 'base64url').toString())
  if (!match) throw KmsError.invalidArgument(`Invalid page token: ${token}`)
  return Number(match[1])
}
