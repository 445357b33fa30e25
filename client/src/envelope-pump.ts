/**
 * The envelope between a source and a sink that the caller supplies, for callers that control their
 * own reading and writing (a file descriptor, a socket with a buffer of its own): the same bytes as
 * envelope-streams.ts, with memory that does not grow with the data. Plaintext is read into two
 * buffers allocated once, and each ciphertext or plaintext that AES-GCM produces (Cipher.update always
 * allocates its output) is released as soon as the sink is done with it, rather than whenever the
 * garbage collector next runs: V8 lets such memory outside its heap grow by tens of MiB between
 * collections.
 */
import { MAX_HEADER_BYTES, parseHeader, TAG_BYTES, type EnvelopeHeader } from './envelope-format.js'
import type { OpenedEnvelope, SealingEnvelope } from './envelope-streams.js'
import { cannotDecrypt } from './keywrap-error.js'

/** Where encryptFrom() and decryptFrom() read. */
export interface ByteSource {
  /** Fills `buffer` from its start; resolves with the number of bytes read, 0 only at the end. */
  read(buffer: Buffer): Promise<number>
}

/** Where encryptFrom() and decryptFrom() write. */
export interface ByteSink {
  /** Resolves once `bytes` are written; the sink must keep no reference to them after that, their memory is released or reused. */
  write(bytes: Buffer): Promise<void>
}

export async function pumpEncrypt(source: ByteSource, sink: ByteSink, segmentSize: number, start: () => Promise<SealingEnvelope>): Promise<void> {
  let current = Buffer.allocUnsafeSlow(segmentSize)
  let next = Buffer.allocUnsafeSlow(segmentSize)
  // Read before the DEK is asked for, as the Transform does: an input that fails costs no DEK.
  let length = await readFull(source, current)
  const { header, cipher, charge } = await start()
  await sink.write(header.bytes)
  for (;;) {
    // A full segment is final only when nothing follows it: the last one may be full.
    const nextLength = length === segmentSize ? await readFull(source, next) : 0
    const final = nextLength === 0
    charge(length)
    const [ciphertext, tag] = cipher.seal(current.subarray(0, length), final)
    await sink.write(ciphertext)
    release(ciphertext)
    await sink.write(tag)
    if (final) return
    ;[current, next] = [next, current]
    length = nextLength
  }
}

export async function pumpDecrypt(
  source: ByteSource,
  sink: ByteSink,
  maxSegmentSize: number,
  open: (header: EnvelopeHeader) => Promise<OpenedEnvelope>,
): Promise<void> {
  const headerBytes = Buffer.allocUnsafe(MAX_HEADER_BYTES)
  let filled = 0
  let header: EnvelopeHeader | undefined
  while (!(header = parseHeader(headerBytes.subarray(0, filled)))) {
    const read = await source.read(headerBytes.subarray(filled))
    if (read === 0) throw cannotDecrypt('the envelope ends inside its header')
    filled += read
  }
  if (header.segmentSize > maxSegmentSize)
    throw cannotDecrypt(`its segments of ${header.segmentSize} bytes are larger than this reader's limit of ${maxSegmentSize}`)
  const { cipher, charge } = await open(header)
  const stride = header.segmentSize + TAG_BYTES
  let current = Buffer.allocUnsafeSlow(stride)
  let next = Buffer.allocUnsafeSlow(stride)
  const body = startingWith(headerBytes.subarray(header.bytes.length, filled), source)
  let length = await readFull(body, current)
  for (;;) {
    const nextLength = length === stride ? await readFull(body, next) : 0
    const final = nextLength === 0
    const plaintext = cipher.open(current.subarray(0, length), final)
    charge(plaintext.length)
    if (plaintext.length > 0) await sink.write(plaintext)
    release(plaintext)
    if (final) return
    ;[current, next] = [next, current]
    length = nextLength
  }
}

/** `source` after `first`: the bytes read past the header belong to the body. */
function startingWith(first: Buffer, source: ByteSource): ByteSource {
  let rest = first
  return {
    async read(buffer) {
      if (rest.length === 0) return source.read(buffer)
      const copied = rest.copy(buffer)
      rest = rest.subarray(copied)
      return copied
    },
  }
}

/** Reads until `buffer` is full or the source ends; the number of bytes read. */
async function readFull(source: ByteSource, buffer: Buffer): Promise<number> {
  let filled = 0
  while (filled < buffer.length) {
    const read = await source.read(buffer.subarray(filled))
    if (read === 0) break
    filled += read
  }
  return filled
}

/**
 * Frees the memory of a buffer that AES-GCM allocated for this pump alone, now: detaching its
 * ArrayBuffer (ArrayBuffer.prototype.transfer, Node 22 and later) releases it at once. Anything that
 * is not a whole ArrayBuffer of its own is left to the garbage collector.
 */
function release(bytes: Buffer): void {
  const memory = bytes.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer }
  if (typeof memory.transfer === 'function' && bytes.byteOffset === 0 && bytes.byteLength === memory.byteLength) memory.transfer(0)
}
