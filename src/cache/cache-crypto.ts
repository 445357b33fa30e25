/**
 * What makes the shared cache useless to whoever copies Redis. Per epoch, one random 32-byte secret
 * (stored in Redis only wrapped by a KEK) yields, through HKDF, the keys that name and seal entries:
 *
 *   entry name   = base64url(HMAC(entryMac, "dek" | alias | wrappedKey | aad | generation))
 *   generation   = base64url(HMAC(generationMac, "gen" | alias))   (names the alias's purge token)
 *   entry value  = 1 | uint32 version | uint64 expiresAt (ms) | 12-byte IV | AES-256-GCM(DEK) | 16-byte tag
 *                  with AAD = domain | Redis key | the 13 header bytes
 *
 * Every variable-length part is length-prefixed, so no two inputs encode alike.
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto'
import { lengthPrefixed } from '../crypto/length-prefixed.js'
import { randomBytesPooled } from '../crypto/random-pool.js'
import type { CachedDek, DekCacheKey } from './dek-cache.js'

export const EPOCH_SECRET_BYTES = 32
export const GENERATION_BYTES = 16

const ENTRY_FORMAT = 1
const EPOCH_RECORD_FORMAT = 1
const HEADER_BYTES = 13
const IV_BYTES = 12
const TAG_BYTES = 16
const HKDF_SALT = Buffer.from('keywrap/cache/v1', 'utf8')
const EPOCH_AAD_DOMAIN = Buffer.from('keywrap/cache-epoch/v1', 'utf8')
const ENTRY_AAD_DOMAIN = Buffer.from('keywrap/cache-entry/v1', 'utf8')

export interface EpochKeys {
  readonly entryMac: KeyObject
  readonly generationMac: KeyObject
  readonly entryEncryption: KeyObject
}

export interface OpenedEntry extends CachedDek {
  /** Milliseconds since 1970. */
  readonly expiresAt: number
}

export function deriveEpochKeys(secret: Buffer): EpochKeys {
  const derive = (label: string) => {
    const bytes = Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, label, 32))
    const key = createSecretKey(bytes)
    bytes.fill(0)
    return key
  }
  return { entryMac: derive('entry-name'), generationMac: derive('generation-name'), entryEncryption: derive('entry-value') }
}

export function newEpochSecret(): Buffer {
  return randomBytes(EPOCH_SECRET_BYTES)
}

export function newGeneration(): Buffer {
  return randomBytes(GENERATION_BYTES)
}

/** The AAD under which the KEK wraps an epoch's secret: a record moved to another epoch fails. */
export function epochAad(epoch: number): Buffer {
  return Buffer.concat([EPOCH_AAD_DOMAIN, uint64(epoch)])
}

/** The stored epoch record: 1 | uint32 KEK version | the provider's ciphertext. */
export function encodeEpochRecord(version: number, ciphertext: Buffer): Buffer {
  const header = Buffer.alloc(5)
  header.writeUInt8(EPOCH_RECORD_FORMAT, 0)
  header.writeUInt32BE(version, 1)
  return Buffer.concat([header, ciphertext])
}

export function decodeEpochRecord(record: Buffer): { version: number; ciphertext: Buffer } | undefined {
  if (record.length < 6 || record.readUInt8(0) !== EPOCH_RECORD_FORMAT) return undefined
  return { version: record.readUInt32BE(1), ciphertext: record.subarray(5) }
}

export function entryName(keys: EpochKeys, key: DekCacheKey, generation: Buffer): string {
  return mac(keys.entryMac, [Buffer.from('dek'), lengthPrefixed(key.alias), lengthPrefixed(key.wrappedKey), lengthPrefixed(key.aad), lengthPrefixed(generation)])
}

export function generationName(keys: EpochKeys, alias: string): string {
  return mac(keys.generationMac, [Buffer.from('gen'), lengthPrefixed(alias)])
}

function mac(key: KeyObject, parts: readonly Buffer[]): string {
  return createHmac('sha256', key).update(Buffer.concat(parts)).digest('base64url')
}

export function sealEntry(keys: EpochKeys, redisKey: string, dek: CachedDek, expiresAt: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt8(ENTRY_FORMAT, 0)
  header.writeUInt32BE(dek.version, 1)
  header.writeBigUInt64BE(BigInt(expiresAt), 5)
  const iv = randomBytesPooled(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', keys.entryEncryption, iv)
  cipher.setAAD(entryAad(redisKey, header))
  const body = Buffer.concat([cipher.update(dek.plaintext), cipher.final()])
  return Buffer.concat([header, iv, body, cipher.getAuthTag()])
}

/** The entry, or undefined when the value was not sealed for this Redis key with these keys. */
export function openEntry(keys: EpochKeys, redisKey: string, value: Buffer): OpenedEntry | undefined {
  if (value.length < HEADER_BYTES + IV_BYTES + 1 + TAG_BYTES || value.readUInt8(0) !== ENTRY_FORMAT) return undefined
  const header = value.subarray(0, HEADER_BYTES)
  const iv = value.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES)
  const body = value.subarray(HEADER_BYTES + IV_BYTES, value.length - TAG_BYTES)
  const decipher = createDecipheriv('aes-256-gcm', keys.entryEncryption, iv)
  decipher.setAAD(entryAad(redisKey, header))
  decipher.setAuthTag(value.subarray(value.length - TAG_BYTES))
  let plaintext: Buffer
  try {
    plaintext = decipher.update(body)
    // GCM releases everything in update(); final() checks the tag (and throws when it does not match).
    decipher.final()
  } catch {
    return undefined
  }
  return { plaintext, version: header.readUInt32BE(1), expiresAt: Number(header.readBigUInt64BE(5)) }
}

function entryAad(redisKey: string, header: Buffer): Buffer {
  return Buffer.concat([ENTRY_AAD_DOMAIN, lengthPrefixed(redisKey), header])
}

export function uint64(value: number): Buffer {
  const buffer = Buffer.alloc(8)
  buffer.writeBigUInt64BE(BigInt(value))
  return buffer
}
