/**
 * CRC32C end-to-end checks, as Cloud KMS recommends: checksums go out with every request and every
 * response is checked before its bytes are used. A failed check is an IntegrityError, which the
 * provider retries and never lets reach a caller.
 */
import type { protos } from '@google-cloud/kms'
import { crc32c } from '../../crypto/crc32c.js'

export type Int64 = protos.google.protobuf.IInt64Value | null | undefined
export type Bytes = Uint8Array | string | null | undefined

export class IntegrityError extends Error {
  constructor(check: string) {
    super(`Cloud KMS ${check}`)
    this.name = 'IntegrityError'
  }
}

export function checksumOf(data: Uint8Array): { value: number } {
  return { value: crc32c(data) }
}

/** The ciphertext and version name of an Encrypt response that passed every check. */
export function verifiedEncryptResponse(response: protos.google.cloud.kms.v1.IEncryptResponse): { ciphertext: Buffer; name: string } {
  if (response.verifiedPlaintextCrc32c !== true) throw new IntegrityError('did not verify the plaintext checksum')
  if (response.verifiedAdditionalAuthenticatedDataCrc32c !== true) {
    throw new IntegrityError('did not verify the additional authenticated data checksum')
  }
  const ciphertext = toBuffer(response.ciphertext)
  if (!matches(ciphertext, response.ciphertextCrc32c)) throw new IntegrityError('returned a ciphertext that does not match its checksum')
  return { ciphertext, name: response.name ?? '' }
}

/** The plaintext of a Decrypt response that passed its check. */
export function verifiedPlaintext(response: protos.google.cloud.kms.v1.IDecryptResponse): Buffer {
  const plaintext = toBuffer(response.plaintext)
  if (!matches(plaintext, response.plaintextCrc32c)) throw new IntegrityError('returned a plaintext that does not match its checksum')
  return plaintext
}

/** Whether a response's CRC32C checksum is present and matches `data`. */
export function matches(data: Buffer, checksum: Int64): boolean {
  // int64 values arrive as decimal strings (or Long objects); a CRC32C always fits a double.
  const value = checksum?.value
  return value !== null && value !== undefined && Number(String(value)) === crc32c(data)
}

/** A copy, so that a key never keeps a whole gRPC frame alive; strings are base64 (REST transport). */
export function toBuffer(bytes: Bytes): Buffer {
  if (typeof bytes === 'string') return Buffer.from(bytes, 'base64')
  return bytes ? Buffer.from(bytes) : Buffer.alloc(0)
}
