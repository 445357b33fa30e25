/** Length-prefixed parts, so that no two sequences of parts encode alike (AADs, MAC inputs). */

/** A uint32, big-endian. */
export function uint32(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(4)
  bytes.writeUInt32BE(value)
  return bytes
}

/** A uint32 (big-endian) of the byte length of `part` (UTF-8 for a string), then its bytes. */
export function lengthPrefixed(part: string | Uint8Array): Buffer {
  const length = typeof part === 'string' ? Buffer.byteLength(part, 'utf8') : part.length
  const bytes = Buffer.allocUnsafe(4 + length)
  bytes.writeUInt32BE(length)
  if (typeof part === 'string') bytes.write(part, 4, 'utf8')
  else bytes.set(part, 4)
  return bytes
}
