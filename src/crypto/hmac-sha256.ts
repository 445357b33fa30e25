/**
 * HMAC-SHA256 (RFC 2104) under one key, as two one-shot hashes over inputs that keep the padded keys:
 * H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ message)). createHmac() builds a Hmac object and derives the padded
 * keys again on every call, about three times the cost; this runs for every generated key (its audit
 * fingerprint) and every Redis cache lookup (the entry's name). The padded keys stay in this object's
 * buffers as long as it lives, as the key itself would.
 */
import { hash } from 'node:crypto'
import { URL_SAFE_ALPHABET } from './base64.js'
import { ByteInput } from './hash-input.js'

const BLOCK_BYTES = 64
const DIGEST_BYTES = 32

export class HmacSha256 {
  private readonly inner: ByteInput
  private readonly outer: ByteInput

  constructor(key: Uint8Array) {
    const block = Buffer.alloc(BLOCK_BYTES)
    if (key.length > BLOCK_BYTES) {
      const hashed = hash('sha256', key, 'buffer')
      block.set(hashed)
      hashed.fill(0)
    } else {
      block.set(key)
    }
    const pad = Buffer.alloc(BLOCK_BYTES)
    for (let index = 0; index < BLOCK_BYTES; index++) pad[index] = block[index]! ^ 0x36
    this.inner = new ByteInput(pad)
    for (let index = 0; index < BLOCK_BYTES; index++) pad[index] = block[index]! ^ 0x5c
    this.outer = new ByteInput(pad, BLOCK_BYTES + DIGEST_BYTES)
    pad.fill(0)
    block.fill(0)
  }

  /** The MAC of the message `write` appends, cut to its first `bytes` bytes, in unpadded base64url. */
  base64url(write: (message: ByteInput) => unknown, bytes: number = DIGEST_BYTES): string {
    if (!(bytes >= 1 && bytes <= DIGEST_BYTES)) throw new RangeError(`bytes must be 1 to ${DIGEST_BYTES}`)
    write(this.inner.reset())
    const innerDigest = this.inner.sha256('binary')
    return truncatedBase64url(this.outer.reset().binary(innerDigest).sha256('base64url'), bytes)
  }
}

/** The base64url of the first `bytes` bytes, from the base64url of all of them: whole characters, then the bits of a partial one. */
function truncatedBase64url(encoded: string, bytes: number): string {
  const bits = bytes * 8
  const whole = Math.floor(bits / 6)
  const rest = bits % 6
  if (rest === 0) return encoded.slice(0, whole)
  const keep = (0b111111 << (6 - rest)) & 0b111111
  return encoded.slice(0, whole) + URL_SAFE_ALPHABET[URL_SAFE_ALPHABET.indexOf(encoded[whole]!) & keep]
}
