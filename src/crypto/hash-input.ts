/**
 * SHA-256 over parts written straight into one reused buffer. The hot path hashes several times per
 * key access (the audit chain link, the L1 key, Redis entry names), and building each input with
 * Buffer.from() and Buffer.concat() cost three allocations for bytes hashed at once and dropped:
 * about as much CPU as the hash itself. Digests come out as strings: a Buffer made by hash() costs
 * more than hashing a hundred bytes.
 *
 * The shared input (hashInput()) is only for inputs that are not secret (the bytes stay in the
 * buffer until overwritten), and only within one synchronous run: hashInput() starts the next input
 * over the same buffer.
 */
import { hash } from 'node:crypto'

export type DigestEncoding = 'hex' | 'base64url' | 'binary'

/** Bytes appended to a buffer of its own, which grows as needed and is reused by reset(): hash inputs, and other encodings built in one pass. */
export class ByteInput {
  private buffer: Buffer
  private length: number
  private readonly prefixLength: number

  /**
   * `prefix`: bytes copied in once, that stay at the start across reset() (an HMAC's padded key);
   * the old buffer is zeroed when it grows.
   */
  constructor(prefix: Uint8Array = new Uint8Array(0), initialBytes = 4096) {
    this.buffer = Buffer.allocUnsafeSlow(Math.max(initialBytes, prefix.length))
    this.buffer.set(prefix)
    this.length = this.prefixLength = prefix.length
  }

  /** Back to the prefix alone. */
  reset(): this {
    this.length = this.prefixLength
    return this
  }

  /** Appends the bytes `text` spells in hex. */
  hex(text: string): this {
    this.reserve(text.length >>> 1)
    this.length += this.buffer.write(text, this.length, 'hex')
    return this
  }

  /** Appends the UTF-8 encoding of `text` (a lone surrogate as U+FFFD, as Buffer.from does). */
  utf8(text: string): this {
    this.reserve(text.length * 3)
    this.length += this.buffer.write(text, this.length, 'utf8')
    return this
  }

  /** Appends a uint32 (big-endian) of the UTF-8 length of `text`, then that encoding. */
  utf8Prefixed(text: string): this {
    this.reserve(4 + text.length * 3)
    const start = this.length
    const written = this.buffer.write(text, start + 4, 'utf8')
    this.buffer.writeUInt32BE(written, start)
    this.length += 4 + written
    return this
  }

  /** Appends one byte per character (latin1; what hash() gives for 'binary'). */
  binary(text: string): this {
    this.reserve(text.length)
    this.length += this.buffer.write(text, this.length, 'latin1')
    return this
  }

  byte(value: number): this {
    this.reserve(1)
    this.buffer[this.length++] = value
    return this
  }

  bytes(data: Uint8Array): this {
    this.reserve(data.length)
    this.buffer.set(data, this.length)
    this.length += data.length
    return this
  }

  /** Appends a uint32, big-endian. */
  uint32(value: number): this {
    this.reserve(4)
    this.length = this.buffer.writeUInt32BE(value, this.length)
    return this
  }

  /** Appends a uint32 (big-endian) of the length of `data`, then `data`. */
  bytesPrefixed(data: Uint8Array): this {
    return this.uint32(data.length).bytes(data)
  }

  /** A copy of the bytes appended since the prefix, in a Buffer of their own. */
  toBuffer(): Buffer {
    return Buffer.from(this.buffer.subarray(this.prefixLength, this.length))
  }

  sha256(encoding: DigestEncoding): string {
    return hash('sha256', this.buffer.subarray(0, this.length), encoding)
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return
    const larger = Buffer.allocUnsafeSlow(Math.max(2 * this.buffer.length, this.length + bytes))
    this.buffer.copy(larger, 0, 0, this.length)
    if (this.prefixLength > 0) this.buffer.fill(0)
    this.buffer = larger
  }
}

const shared = new ByteInput()

/** An empty input over the shared buffer; the previous one, if unfinished, is gone. */
export function hashInput(): ByteInput {
  return shared.reset()
}
