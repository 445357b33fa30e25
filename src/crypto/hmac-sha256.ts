/**
 * HMAC-SHA256 (RFC 2104) of strings under one key, as two one-shot hashes over buffers kept for the
 * key: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ message)). createHmac() builds a Hmac object and derives the
 * padded keys again on every call; for the audit trail's fingerprints (one per generated key) that
 * was about three times the cost. The padded keys stay in these buffers as long as the object lives,
 * as the key itself does.
 */
import { hash } from 'node:crypto'

const BLOCK_BYTES = 64
const DIGEST_BYTES = 32

export class HmacSha256 {
  /** K ⊕ ipad, then room for the message. */
  private inner: Buffer
  /** K ⊕ opad, then the inner digest. */
  private readonly outer = Buffer.allocUnsafeSlow(BLOCK_BYTES + DIGEST_BYTES)

  constructor(key: Uint8Array) {
    const block = Buffer.alloc(BLOCK_BYTES)
    block.set(key.length > BLOCK_BYTES ? hash('sha256', key, 'buffer') : key)
    this.inner = Buffer.allocUnsafeSlow(BLOCK_BYTES + 256)
    for (let index = 0; index < BLOCK_BYTES; index++) {
      this.inner[index] = block[index]! ^ 0x36
      this.outer[index] = block[index]! ^ 0x5c
    }
    block.fill(0)
  }

  /**
   * The first `bytes` bytes of the MAC of `message` (as UTF-8; a lone surrogate as U+FFFD, as
   * Hmac.update does), in unpadded base64url. Digests come out as strings: a Buffer made by hash()
   * costs more than the hash.
   */
  base64url(message: string, bytes: number = DIGEST_BYTES): string {
    if (!(bytes >= 1 && bytes <= DIGEST_BYTES)) throw new RangeError(`bytes must be 1 to ${DIGEST_BYTES}`)
    if (BLOCK_BYTES + message.length * 3 > this.inner.length) {
      const larger = Buffer.allocUnsafeSlow(BLOCK_BYTES + message.length * 3)
      this.inner.copy(larger, 0, 0, BLOCK_BYTES)
      this.inner.fill(0)
      this.inner = larger
    }
    const length = BLOCK_BYTES + this.inner.write(message, BLOCK_BYTES, 'utf8')
    // 'binary' is latin1: one character per byte.
    this.outer.write(hash('sha256', this.inner.subarray(0, length), 'binary'), BLOCK_BYTES, 'binary')
    return truncatedBase64url(hash('sha256', this.outer, 'base64url'), bytes)
  }
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** The base64url of the first `bytes` bytes, from the base64url of all of them: whole characters, then the bits of a partial one. */
function truncatedBase64url(encoded: string, bytes: number): string {
  const bits = bytes * 8
  const whole = Math.floor(bits / 6)
  const rest = bits % 6
  if (rest === 0) return encoded.slice(0, whole)
  const keep = (0b111111 << (6 - rest)) & 0b111111
  return encoded.slice(0, whole) + BASE64URL[BASE64URL.indexOf(encoded[whole]!) & keep]
}
