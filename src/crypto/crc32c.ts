// CRC-32C (Castagnoli), the checksum Cloud KMS uses for its *_crc32c fields.
// Reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF.

const CASTAGNOLI_REFLECTED = 0x82f63b78

const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let bit = 0; bit < 8; bit++) {
      c = c & 1 ? (c >>> 1) ^ CASTAGNOLI_REFLECTED : c >>> 1
    }
    table[n] = c >>> 0
  }
  return table
})()

/** CRC-32C of `buf` as an unsigned 32-bit integer. */
export function crc32c(buf: Uint8Array): number {
  let crc = 0xffffffff
  for (const byte of buf) {
    crc = TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8)
  }
  return (crc ^ 0xffffffff) >>> 0
}
