/**
 * The envelope as Node Transform streams: segments sealed and opened as the data passes, so that
 * memory holds about one segment whatever the size. The decrypting side holds one segment back until
 * it knows whether another follows (only the last is opened as final), and emits a segment's
 * plaintext once its tag is verified: a stream cut, reordered or extended ends in a `cannot_decrypt`
 * error, after the segments that did verify.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { ByteQueue } from './byte-queue.js'
import { MAX_HEADER_BYTES, parseHeader, TAG_BYTES, type EnvelopeHeader, type SegmentCipher } from './envelope-format.js'
import { cannotDecrypt } from './keywrap-error.js'

export interface OpenedEnvelope {
  readonly cipher: SegmentCipher
  /** Counts plaintext bytes against the DEK's cache limits. */
  charge(bytes: number): void
}

export interface SealingEnvelope extends OpenedEnvelope {
  readonly header: EnvelopeHeader
}

abstract class SegmentTransform extends Transform {
  protected readonly queue = new ByteQueue()

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.queue.push(chunk)
    this.process(false).then(() => callback(), callback)
  }

  override _flush(callback: TransformCallback): void {
    this.process(true).then(() => callback(), callback)
  }

  protected abstract process(ended: boolean): Promise<void>
}

export class EncryptingTransform extends SegmentTransform {
  #envelope: SealingEnvelope | undefined

  constructor(
    private readonly segmentSize: number,
    private readonly start: () => Promise<SealingEnvelope>,
  ) {
    super()
  }

  protected async process(ended: boolean): Promise<void> {
    if (!this.#envelope) {
      this.#envelope = await this.start()
      this.push(this.#envelope.header.bytes)
    }
    // A full segment is sealed as final only at the end: the last one may be full.
    while (this.queue.length > this.segmentSize) this.#seal(this.queue.take(this.segmentSize), false)
    if (ended) this.#seal(this.queue.take(this.segmentSize), true)
  }

  #seal(plaintext: Buffer, final: boolean): void {
    const envelope = this.#envelope!
    envelope.charge(plaintext.length)
    const [ciphertext, tag] = envelope.cipher.seal(plaintext, final)
    this.push(ciphertext)
    this.push(tag)
  }
}

export class DecryptingTransform extends SegmentTransform {
  #envelope: OpenedEnvelope | undefined
  #stride = 0

  constructor(
    private readonly maxSegmentSize: number,
    private readonly open: (header: EnvelopeHeader) => Promise<OpenedEnvelope>,
  ) {
    super()
  }

  protected async process(ended: boolean): Promise<void> {
    if (!this.#envelope) {
      const header = parseHeader(this.queue.peek(MAX_HEADER_BYTES))
      if (!header) {
        if (ended) throw cannotDecrypt('the envelope ends inside its header')
        return
      }
      if (header.segmentSize > this.maxSegmentSize) {
        throw cannotDecrypt(`its segments of ${header.segmentSize} bytes are larger than this reader's limit of ${this.maxSegmentSize}`)
      }
      this.queue.take(header.bytes.length)
      this.#envelope = await this.open(header)
      this.#stride = header.segmentSize + TAG_BYTES
    }
    while (this.queue.length > this.#stride) this.#open(this.queue.take(this.#stride), false)
    if (ended) this.#open(this.queue.take(this.#stride), true)
  }

  #open(segment: Buffer, final: boolean): void {
    const plaintext = this.#envelope!.cipher.open(segment, final)
    this.#envelope!.charge(plaintext.length)
    if (plaintext.length > 0) this.push(plaintext)
  }
}
