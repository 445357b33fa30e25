import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { ByteInput, hashInput } from '../../src/crypto/hash-input.js'

const part = fc.oneof(
  fc.record({ kind: fc.constant('hex' as const), value: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('hex')) }),
  // Lone surrogates included: both sides must encode them as U+FFFD.
  fc.record({ kind: fc.constant('utf8' as const), value: fc.string({ unit: 'binary', maxLength: 3000 }) }),
  fc.record({ kind: fc.constant('byte' as const), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('bytes' as const), value: fc.uint8Array({ maxLength: 5000 }) }),
  fc.record({ kind: fc.constant('utf8Prefixed' as const), value: fc.string({ unit: 'binary', maxLength: 300 }) }),
  fc.record({ kind: fc.constant('bytesPrefixed' as const), value: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ kind: fc.constant('binary' as const), value: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')) }),
)

const uint32 = (value: number) => {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value)
  return bytes
}

test('hashes the concatenation of its parts, however large, and nothing left from an earlier input', () => {
  fc.assert(
    fc.property(fc.array(part, { maxLength: 8 }), fc.constantFrom('hex' as const, 'base64url' as const, 'binary' as const), (parts, encoding) => {
      // A long input first, so that a shorter one after it would show stale bytes if any were hashed.
      hashInput().bytes(Buffer.alloc(9000, 7)).sha256('hex')
      const reference = createHash('sha256')
      let input = hashInput()
      for (const { kind, value } of parts) {
        if (kind === 'hex') {
          reference.update(Buffer.from(value, 'hex'))
          input = input.hex(value)
        } else if (kind === 'utf8') {
          reference.update(Buffer.from(value, 'utf8'))
          input = input.utf8(value)
        } else if (kind === 'utf8Prefixed') {
          const bytes = Buffer.from(value, 'utf8')
          reference.update(uint32(bytes.length)).update(bytes)
          input = input.utf8Prefixed(value)
        } else if (kind === 'bytesPrefixed') {
          reference.update(uint32(value.length)).update(value)
          input = input.bytesPrefixed(value)
        } else if (kind === 'binary') {
          reference.update(Buffer.from(value, 'latin1'))
          input = input.binary(value)
        } else if (kind === 'byte') {
          reference.update(Buffer.from([value]))
          input = input.byte(value)
        } else {
          reference.update(value)
          input = input.bytes(value)
        }
      }
      assert.equal(input.sha256(encoding), reference.digest(encoding))
    }),
    { numRuns: 300 },
  )
})

test('an empty input is the hash of nothing', () => {
  hashInput().utf8('something').sha256('hex')
  assert.equal(hashInput().sha256('hex'), createHash('sha256').digest('hex'))
})

test('toBuffer copies out what was appended after the prefix, and stays as it was when the input is reused', () => {
  const input = new ByteInput(Buffer.from([0xaa, 0xbb]))
  const first = input.reset().uint32(258).utf8Prefixed('é').toBuffer()
  assert.deepEqual(first, Buffer.from([0, 0, 1, 2, 0, 0, 0, 2, 0xc3, 0xa9]))
  input.reset().bytes(Buffer.alloc(20, 7))
  assert.deepEqual(first, Buffer.from([0, 0, 1, 2, 0, 0, 0, 2, 0xc3, 0xa9]))
})
