// Ciphertext layout, like real KMS opaque but self-describing so Decrypt on a
// CryptoKey can find the version that produced it:
//
//   format(1) | keyId(8) | version(4, BE) | iv(12) | AES-256-GCM ciphertext | tag(16)
//
// The header bytes and the caller's additional_authenticated_data are both fed
// to GCM as AAD, so tampering with either makes decryption fail.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

const FORMAT_V1 = 0x01
export const KEY_ID_BYTES = 8
const HEADER_BYTES = 1 + KEY_ID_BYTES + 4
const IV_BYTES = 12
const TAG_BYTES = 16

export interface CiphertextHeader {
  /** Random per-CryptoKey id: tells "wrong key" apart from "corrupt ciphertext". */
  keyId: Buffer
  version: number
}

export function readHeader(ciphertext: Uint8Array): CiphertextHeader | undefined {
  if (ciphertext.length < HEADER_BYTES + IV_BYTES + TAG_BYTES || ciphertext[0] !== FORMAT_V1) {
    return undefined
  }
  const bytes = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength)
  return {
    keyId: Buffer.from(bytes.subarray(1, 1 + KEY_ID_BYTES)),
    version: bytes.readUInt32BE(1 + KEY_ID_BYTES),
  }
}

export function seal(material: Buffer, header: CiphertextHeader, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const headerBytes = Buffer.alloc(HEADER_BYTES)
  headerBytes[0] = FORMAT_V1
  header.keyId.copy(headerBytes, 1)
  headerBytes.writeUInt32BE(header.version, 1 + KEY_ID_BYTES)
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', material, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(Buffer.concat([headerBytes, aad]))
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([headerBytes, iv, body, cipher.getAuthTag()])
}

/** The plaintext, or undefined if authentication fails. */
export function open(material: Buffer, ciphertext: Uint8Array, aad: Uint8Array): Buffer | undefined {
  const bytes = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength)
  const headerBytes = bytes.subarray(0, HEADER_BYTES)
  const iv = bytes.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES)
  const body = bytes.subarray(HEADER_BYTES + IV_BYTES, bytes.length - TAG_BYTES)
  const tag = bytes.subarray(bytes.length - TAG_BYTES)
  try {
    const decipher = createDecipheriv('aes-256-gcm', material, iv, { authTagLength: TAG_BYTES })
    decipher.setAAD(Buffer.concat([headerBytes, aad]))
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(body), decipher.final()])
  } catch {
    return undefined
  }
}
