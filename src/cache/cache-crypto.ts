/**
 * What makes the shared cache useless to whoever copies Redis. Per epoch, one random 32-byte secret
 * (stored in Redis only wrapped by a KEK) yields, through HKDF, the keys that name and seal entries:
 *
 *   entry name   = base64url(HMAC(entryMac, "dek" | alias | wrappedKey | aad | generation))
 *   generation   = base64url(HMAC(generationMac, "gen" | alias))   (names the alias's generation record)
 *   gen. record  = 1 | uint64 counter | 16-byte token | HMAC(generationRecordMac, domain | Redis key | the 25 bytes before)
 *   entry value  = 1 | uint32 version | uint64 expiresAt (ms) | 12-byte IV | AES-256-GCM(DEK) | 16-byte tag
 *                  with AAD = domain | Redis key | the 13 header bytes
 *
 * Every variable-length part is length-prefixed, so no two inputs encode alike.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'
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
const KEK_TAG_DOMAIN = Buffer.from('keywrap/cache-kek/v1', 'utf8')
const GENERATION_RECORD_FORMAT = 1
const GENERATION_RECORD_DOMAIN = Buffer.from('keywrap/cache-generation/v1', 'utf8')
const GENERATION_HEADER_BYTES = 9
const GENERATION_MAC_BYTES = 32
const GENERATION_RECORD_BYTES = GENERATION_HEADER_BYTES + GENERATION_BYTES + GENERATION_MAC_BYTES

export interface EpochKeys {
  readonly entryMac: KeyObject
  readonly generationMac: KeyObject
  /** Authenticates generation records: whoever can write Redis but holds no epoch secret cannot make one. */
  readonly generationRecordMac: KeyObject
  readonly entryEncryption: KeyObject
}

/** An alias's generation in an epoch: the counter only a purge moves, forward; the token entry names mix in. */
export interface GenerationRecord {
  readonly counter: number
  readonly token: Buffer
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
  return {
    entryMac: derive('entry-name'),
    generationMac: derive('generation-name'),
    generationRecordMac: derive('generation-record'),
    entryEncryption: derive('entry-value'),
  }
}

export function newEpochSecret(): Buffer {
  return randomBytes(EPOCH_SECRET_BYTES)
}

export function newGeneration(): Buffer {
  return randomBytes(GENERATION_BYTES)
}

/**
 * What the names of epoch records carry of the KEK that wraps them (a digest of its identity, not
 * secret): deployments with different cache KEKs on one Redis and prefix each keep their own records.
 */
export function kekTag(identity: string): string {
  return createHash('sha256').update(KEK_TAG_DOMAIN).update(lengthPrefixed(identity)).digest('base64url').slice(0, 16)
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
  return mac(keys.entryMac, [
    Buffer.from('dek'),
    lengthPrefixed(key.alias),
    lengthPrefixed(key.wrappedKey),
    lengthPrefixed(key.aad),
    lengthPrefixed(generation),
  ])
}

export function generationName(keys: EpochKeys, alias: string): string {
  return mac(keys.generationMac, [Buffer.from('gen'), lengthPrefixed(alias)])
}

/** The stored generation record, authenticated for its Redis key (so it cannot move to another alias or epoch). */
export function sealGenerationRecord(keys: EpochKeys, redisKey: string, record: GenerationRecord): Buffer {
  if (!Number.isSafeInteger(record.counter) || record.counter < 1 || record.token.length !== GENERATION_BYTES) throw new Error('Not a generation record.')
  const header = Buffer.alloc(GENERATION_HEADER_BYTES)
  header.writeUInt8(GENERATION_RECORD_FORMAT, 0)
  header.writeBigUInt64BE(BigInt(record.counter), 1)
  const body = Buffer.concat([header, record.token])
  return Buffer.concat([body, generationRecordMac(keys, redisKey, body)])
}

/** The record, or undefined when the value was not sealed for this Redis key with these keys. */
export function openGenerationRecord(keys: EpochKeys, redisKey: string, value: Buffer): GenerationRecord | undefined {
  if (value.length !== GENERATION_RECORD_BYTES || value.readUInt8(0) !== GENERATION_RECORD_FORMAT) return undefined
  const body = value.subarray(0, GENERATION_HEADER_BYTES + GENERATION_BYTES)
  if (!timingSafeEqual(generationRecordMac(keys, redisKey, body), value.subarray(body.length))) return undefined
  const counter = Number(body.readBigUInt64BE(1))
  if (!Number.isSafeInteger(counter) || counter < 1) return undefined
  return { counter, token: Buffer.from(body.subarray(GENERATION_HEADER_BYTES)) }
}

function generationRecordMac(keys: EpochKeys, redisKey: string, body: Buffer): Buffer {
  return createHmac('sha256', keys.generationRecordMac)
    .update(Buffer.concat([GENERATION_RECORD_DOMAIN, lengthPrefixed(redisKey), body]))
    .digest()
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
