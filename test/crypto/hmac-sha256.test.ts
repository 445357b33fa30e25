import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import fc from 'fast-check'
import { HmacSha256 } from '../../src/crypto/hmac-sha256.js'

test('equals createHmac, truncated to any length, for any key and message, one object reused across messages', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 150 }),
      // Lone surrogates included, and messages long enough to outgrow the first buffer.
      fc.array(fc.tuple(fc.string({ unit: 'binary', maxLength: 2000 }), fc.integer({ min: 1, max: 32 })), { minLength: 1, maxLength: 4 }),
      (key, messages) => {
        const hmac = new HmacSha256(key)
        for (const [message, bytes] of messages) {
          const expected = createHmac('sha256', key).update(message, 'utf8').digest().subarray(0, bytes).toString('base64url')
          assert.equal(hmac.base64url((input) => input.utf8(message), bytes), expected, `${bytes} bytes of the MAC of ${JSON.stringify(message)}`)
        }
      },
    ),
    { numRuns: 500 },
  )
})

test('RFC 4231 test case 2, whole and truncated to 128 bits', () => {
  const hmac = new HmacSha256(Buffer.from('Jefe'))
  const mac = Buffer.from('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843', 'hex')
  assert.equal(hmac.base64url((input) => input.utf8('what do ya want for nothing?')), mac.toString('base64url'))
  assert.equal(hmac.base64url((input) => input.utf8('what do ya want for nothing?'), 16), mac.subarray(0, 16).toString('base64url'))
})

test('refuses a length it cannot give', () => {
  assert.throws(() => new HmacSha256(Buffer.alloc(32)).base64url((input) => input.utf8('x'), 0), RangeError)
  assert.throws(() => new HmacSha256(Buffer.alloc(32)).base64url((input) => input.utf8('x'), 33), RangeError)
})
