/**
 * Envelope encryption inside the workload: AES-256-GCM under DEKs from the key service, each DEK
 * reused for many messages within the cache limits, and each wrapped DEK unwrapped once for many
 * decryptions within the same limits. The format is in envelope-format.ts and client/README.md.
 *
 * DEKs are asked for with the message's context, so the service binds each wrapped DEK to it and
 * its audit trail records it: one DEK serves the messages of one context, and decrypting asks the
 * service with the context given, so a wrong context fails there as well as in the AAD.
 */
import { createSecretKey } from 'node:crypto'
import type { Transform } from 'node:stream'
import { contextForService, encodeContext } from './canonical-context.js'
import { DataKeyCache, type CacheLimits, type CachedKey, type DataKey } from './data-key-cache.js'
import { ALIAS_PATTERN, MAX_SEGMENT_SIZE, newHeader, parseHeader, SegmentCipher, TAG_BYTES, type EnvelopeHeader } from './envelope-format.js'
import { pumpDecrypt, pumpEncrypt, type ByteSink, type ByteSource } from './envelope-pump.js'
import { DecryptingTransform, EncryptingTransform, type OpenedEnvelope, type SealingEnvelope } from './envelope-streams.js'
import { cannotDecrypt, KeywrapError } from './keywrap-error.js'
import type { EncryptionContext, KeywrapClient } from './keywrap-client.js'

export interface EnvelopeEncryptorOptions {
  client: KeywrapClient
  /** The key alias to encrypt under. Needed to encrypt; when set, envelopes of another alias are refused. */
  alias?: string
  /** Limits of each cached DEK, for encryption and decryption alike. */
  cache?: CacheLimits
  /** Plaintext bytes per segment of encryptStream() (default 65,536). */
  segmentSize?: number
  /** The largest segment decryptStream() accepts, hence holds in memory (default 16 MiB). */
  maxStreamSegmentSize?: number
}

const DEK_BYTES = 32
const DEFAULT_SEGMENT_SIZE = 65_536
const DEFAULT_MAX_STREAM_SEGMENT_SIZE = 16 * 1024 * 1024

export class EnvelopeEncryptor {
  readonly #client: KeywrapClient
  readonly #alias: string | undefined
  readonly #segmentSize: number
  readonly #maxStreamSegmentSize: number
  readonly #encryptionKeys: DataKeyCache
  readonly #decryptionKeys: DataKeyCache

  constructor(options: EnvelopeEncryptorOptions) {
    if (options.alias !== undefined && !ALIAS_PATTERN.test(options.alias)) throw new TypeError(`alias "${options.alias}" is not a key alias`)
    this.#client = options.client
    this.#alias = options.alias
    this.#segmentSize = segmentSizeOption(options.segmentSize ?? DEFAULT_SEGMENT_SIZE, 'segmentSize')
    this.#maxStreamSegmentSize = segmentSizeOption(options.maxStreamSegmentSize ?? DEFAULT_MAX_STREAM_SEGMENT_SIZE, 'maxStreamSegmentSize')
    this.#encryptionKeys = new DataKeyCache(options.cache)
    this.#decryptionKeys = new DataKeyCache(options.cache)
  }

  /** The envelope of `plaintext`: one segment (several beyond 4 GiB), bound to `context`. */
  async encrypt(plaintext: Uint8Array, context?: EncryptionContext): Promise<Buffer> {
    const alias = this.#encryptionAlias()
    const encodedContext = encodeContext(context)
    const dek = await this.#encryptionKeys.use(encodedContext.toString('latin1'), plaintext.length, () => this.#generate(alias, context))
    const segmentSize = plaintext.length <= MAX_SEGMENT_SIZE ? Math.max(1, plaintext.length) : this.#segmentSize
    const header = newHeader(alias, dek.wrappedKey, segmentSize)
    const cipher = new SegmentCipher(dek.key, header, encodedContext)
    const parts: Buffer[] = [header.bytes]
    let length = header.bytes.length
    for (let offset = 0; ; offset += segmentSize) {
      const final = offset + segmentSize >= plaintext.length
      const sealed = cipher.seal(plaintext.subarray(offset, offset + segmentSize), final)
      parts.push(...sealed)
      length += sealed[0].length + sealed[1].length
      if (final) return Buffer.concat(parts, length)
    }
  }

  /** The plaintext of an envelope, all of it verified, or a `cannot_decrypt` KeywrapError and nothing. */
  async decrypt(envelope: Uint8Array, context?: EncryptionContext): Promise<Buffer> {
    const bytes = Buffer.isBuffer(envelope) ? envelope : Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength)
    const header = parseHeader(bytes)
    if (!header) throw cannotDecrypt('the envelope ends inside its header')
    const body = bytes.subarray(header.bytes.length)
    const stride = header.segmentSize + TAG_BYTES
    const plaintextBytes = Math.max(0, body.length - Math.ceil(body.length / stride) * TAG_BYTES)
    const encodedContext = encodeContext(context)
    const dek = await this.#unwrap(header, context, encodedContext, plaintextBytes)
    const cipher = new SegmentCipher(dek.key, header, encodedContext)
    const parts: Buffer[] = []
    let offset = 0
    while (body.length - offset > stride) {
      parts.push(cipher.open(body.subarray(offset, offset + stride), false))
      offset += stride
    }
    parts.push(cipher.open(body.subarray(offset), true))
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
  }

  /** A Transform from plaintext to one envelope, in segments of `segmentSize`, bound to `context`. */
  encryptStream(context?: EncryptionContext): Transform {
    return new EncryptingTransform(this.#segmentSize, this.#sealing(context))
  }

  /**
   * The envelope of everything `source` gives, written to `sink` as encryptStream() would produce it,
   * for callers that do their own reading and writing: memory stays at two segments, and each
   * ciphertext is released once the sink is done with it.
   */
  async encryptFrom(source: ByteSource, sink: ByteSink, context?: EncryptionContext): Promise<void> {
    await pumpEncrypt(source, sink, this.#segmentSize, this.#sealing(context))
  }

  /**
   * The plaintext of the envelope `source` gives, written to `sink` segment by segment as each is
   * verified, like decryptStream(): only a call that resolves has written the whole plaintext.
   */
  async decryptFrom(source: ByteSource, sink: ByteSink, context?: EncryptionContext): Promise<void> {
    await pumpDecrypt(source, sink, this.#maxStreamSegmentSize, this.#opening(context))
  }

  #sealing(context: EncryptionContext | undefined): () => Promise<SealingEnvelope> {
    const alias = this.#encryptionAlias()
    const encodedContext = encodeContext(context)
    return async () => {
      const dek = await this.#encryptionKeys.use(encodedContext.toString('latin1'), 0, () => this.#generate(alias, context))
      const header = newHeader(alias, dek.wrappedKey, this.#segmentSize)
      return { header, ...this.#opened(this.#encryptionKeys, dek, header, encodedContext) }
    }
  }

  #opening(context: EncryptionContext | undefined): (header: EnvelopeHeader) => Promise<OpenedEnvelope> {
    const encodedContext = encodeContext(context)
    return async (header) => {
      const dek = await this.#unwrap(header, context, encodedContext, 0)
      return this.#opened(this.#decryptionKeys, dek, header, encodedContext)
    }
  }

  /**
   * A Transform from one envelope to its plaintext. Plaintext comes out segment by segment, each once
   * verified; only a stream that ends without error is the whole plaintext.
   */
  decryptStream(context?: EncryptionContext): Transform {
    return new DecryptingTransform(this.#maxStreamSegmentSize, this.#opening(context))
  }

  #opened(cache: DataKeyCache, dek: CachedKey, header: EnvelopeHeader, encodedContext: Buffer): OpenedEnvelope {
    return { cipher: new SegmentCipher(dek.key, header, encodedContext), charge: (bytes) => cache.charge(dek, bytes) }
  }

  #encryptionAlias(): string {
    if (this.#alias === undefined) throw new TypeError('this EnvelopeEncryptor has no alias to encrypt under')
    return this.#alias
  }

  async #generate(alias: string, context: EncryptionContext | undefined): Promise<DataKey> {
    const generated = await this.#client.generateDataKey(alias, { ...contextForService(context), bytes: DEK_BYTES })
    const key = generated.plaintext === undefined ? undefined : Buffer.from(generated.plaintext, 'base64')
    if (key?.length !== DEK_BYTES) throw new KeywrapError('unexpected_response', { detail: `generateDataKey did not return a ${DEK_BYTES}-byte data key` })
    return { key: createSecretKey(key), wrappedKey: generated.wrappedKey }
  }

  async #unwrap(header: EnvelopeHeader, context: EncryptionContext | undefined, encodedContext: Buffer, bytes: number): Promise<CachedKey> {
    if (this.#alias !== undefined && header.alias !== this.#alias) throw cannotDecrypt(`the envelope is for another key alias than ${this.#alias}`)
    return this.#decryptionKeys.use(`${header.wrappedKey}\n${encodedContext.toString('latin1')}`, bytes, async () => {
      let plaintext: string
      try {
        plaintext = (await this.#client.unwrap(header.alias, { wrappedKey: header.wrappedKey, ...contextForService(context) })).plaintext
      } catch (error) {
        if (error instanceof KeywrapError && (error.code === 'cannot_unwrap' || error.code === 'invalid_wrapped_key'))
          throw cannotDecrypt(undefined, { status: error.status, requestId: error.requestId, cause: error })
        throw error
      }
      const key = Buffer.from(plaintext, 'base64')
      if (key.length !== DEK_BYTES) throw cannotDecrypt()
      return { key: createSecretKey(key), wrappedKey: header.wrappedKey }
    })
  }
}

function segmentSizeOption(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > MAX_SEGMENT_SIZE) throw new RangeError(`${name} must be 1 to ${MAX_SEGMENT_SIZE} bytes`)
  return value
}
