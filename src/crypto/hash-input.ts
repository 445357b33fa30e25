/**
 * SHA-256 over parts written straight into one reused buffer. The hot path hashes twice per key
 * access (the audit chain link, the L1 key), and building each input with Buffer.from() and
 * Buffer.concat() cost three allocations for bytes hashed at once and dropped: about as much CPU as
 * the hash itself.
 *
 * Only for inputs that are not secret (the bytes stay in the buffer until overwritten), and only
 * within one synchronous run: hashInput() starts the next input over the same buffer.
 */
import { hash } from 'node:crypto'

export interface HashInput {
  /** Appends the bytes `text` spells in hex. */
  hex(text: string): HashInput
  /** Appends the UTF-8 encoding of `text` (a lone surrogate as U+FFFD, as Buffer.from does). */
  utf8(text: string): HashInput
  byte(value: number): HashInput
  bytes(data: Uint8Array): HashInput
  sha256(encoding: 'hex' | 'base64url'): string
}

class ScratchInput implements HashInput {
  private buffer = Buffer.allocUnsafeSlow(4096)
  private length = 0

  reset(): this {
    this.length = 0
    return this
  }

  hex(text: string): this {
    this.reserve(text.length >>> 1)
    this.length += this.buffer.write(text, this.length, 'hex')
    return this
  }

  utf8(text: string): this {
    this.reserve(text.length * 3)
    this.length += this.buffer.write(text, this.length, 'utf8')
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

  sha256(encoding: 'hex' | 'base64url'): string {
    return hash('sha256', this.buffer.subarray(0, this.length), encoding)
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return
    const larger = Buffer.allocUnsafeSlow(Math.max(2 * this.buffer.length, this.length + bytes))
    this.buffer.copy(larger, 0, 0, this.length)
    this.buffer = larger
  }
}

const scratch = new ScratchInput()

/** An empty input; the previous one, if unfinished, is gone. */
export function hashInput(): HashInput {
  return scratch.reset()
}
