/** Length-prefixed parts, so that no two sequences of parts encode alike (AADs, MAC inputs). */

/** A uint32, big-endian. */
export function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value)
  return bytes
}

/** A uint32 (big-endian) of the byte length of `part` (UTF-8 for a string), then its bytes. */
export function lengthPrefixed(part: string | Uint8Array): Buffer {
  const bytes = typeof part === 'string' ? Buffer.from(part, 'utf8') : part
  return Buffer.concat([uint32(bytes.length), bytes])
}
