import assert from 'node:assert/strict'
import { test } from 'node:test'
import { randomBytesPooled } from '../../src/crypto/random-pool.js'

test('pooled draws have the size asked for, including across refills and above the pooled limit', () => {
  for (const size of [1, 12, 16, 24, 32, 64, 255, 256, 257, 5000]) assert.equal(randomBytesPooled(size).length, size)
})

test('no two draws repeat, across many refills of the pool', () => {
  const seen = new Set<string>()
  // 20,000 draws of 32 bytes: about 160 refills of the 4 KiB pool.
  for (let index = 0; index < 20_000; index++) seen.add(randomBytesPooled(32).toString('hex'))
  assert.equal(seen.size, 20_000)
})

test('a draw is a copy: later draws do not change it', () => {
  const first = randomBytesPooled(32)
  const kept = Buffer.from(first)
  for (let index = 0; index < 300; index++) randomBytesPooled(32)
  assert.deepEqual(first, kept)
})

test('bytes are spread evenly (no zeroed or repeated pool regions handed out)', () => {
  const counts = new Array<number>(256).fill(0)
  for (let index = 0; index < 16_384; index++) for (const byte of randomBytesPooled(16)) counts[byte]!++
  // 262,144 bytes: 1,024 expected per value; a chi-square over 255 degrees of freedom stays far below 400.
  const chiSquare = counts.reduce((sum, count) => sum + (count - 1024) ** 2 / 1024, 0)
  assert.ok(chiSquare < 400, `chi-square ${chiSquare.toFixed(1)}`)
})

test('a draw has memory of its own, not a slice of a shared slab', () => {
  const draw = randomBytesPooled(32)
  assert.equal(draw.buffer.byteLength, 32)
  assert.equal(draw.byteOffset, 0)
})
