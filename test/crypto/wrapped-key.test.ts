import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { decodeBase64Strict, decodeBase64UrlStrict } from '../../src/crypto/base64.js'
import { formatWrappedKey, parseWrappedKey } from '../../src/crypto/wrapped-key.js'

test('a wrapped key round-trips through its string form', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 999_999_999 }), fc.uint8Array({ minLength: 1, maxLength: 200 }), (version, bytes) => {
      const ciphertext = Buffer.from(bytes)
      const text = formatWrappedKey({ version, ciphertext })
      assert.match(text, /^kw1\.\d+\.[A-Za-z0-9_-]+$/)
      assert.deepEqual(parseWrappedKey(text), { version, ciphertext })
    }),
  )
})

test('no other spelling parses to the same wrapped key', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 99 }), fc.uint8Array({ minLength: 1, maxLength: 70 }), fc.nat(), fc.nat(), (version, bytes, at, pick) => {
      const text = formatWrappedKey({ version, ciphertext: Buffer.from(bytes) })
      const index = at % text.length
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ k'
      const replacement = alphabet[pick % alphabet.length]!
      fc.pre(replacement !== text[index])
      const changed = text.slice(0, index) + replacement + text.slice(index + 1)
      const parsed = parseWrappedKey(changed)
      if (parsed) assert.ok(parsed.version !== version || !parsed.ciphertext.equals(Buffer.from(bytes)))
    }),
  )
})

test('malformed wrapped keys are refused', () => {
  for (const text of [
    '',
    'kw1',
    'kw1.1.',
    'kw2.1.AAAA',
    'kw1.0.AAAA',
    'kw1.01.AAAA',
    'kw1.1.AAAA=',
    'kw1.1.AA AA',
    'KW1.1.AAAA',
    'kw1.1.AAAA.x',
    'kw1.1234567890.AAAA',
    'kw1.1.A',
  ]) {
    assert.equal(parseWrappedKey(text), undefined, text)
  }
})

test('strict base64 accepts only the canonical spelling', () => {
  assert.deepEqual(decodeBase64Strict('AAE='), Buffer.from([0, 1]))
  for (const text of ['AAF=', 'AAE', 'AA E=', 'AAE==', '-_8=', 'AAE=\n']) assert.equal(decodeBase64Strict(text), undefined, text)
  assert.deepEqual(decodeBase64UrlStrict('AAE'), Buffer.from([0, 1]))
  for (const text of ['AAF', 'AAE=', 'A', '+/8']) assert.equal(decodeBase64UrlStrict(text), undefined, text)
})

test('strict base64url accepts exactly the strings that re-encode to themselves', () => {
  const roundTrips = (text: string) => Buffer.from(text, 'base64url').toString('base64url') === text
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const urlSafe = fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 12 })
  // Mostly base64url characters (every tail length, every last character), sometimes anything.
  fc.assert(
    fc.property(
      fc.oneof(
        urlSafe,
        fc.string({ maxLength: 8 }),
        urlSafe.map((text) => `${text}=`),
      ),
      (text) => {
        const decoded = decodeBase64UrlStrict(text)
        if (/^[A-Za-z0-9_-]*$/.test(text) && roundTrips(text)) assert.deepEqual(decoded, Buffer.from(text, 'base64url'), text)
        else assert.equal(decoded, undefined, text)
      },
    ),
    { numRuns: 5000 },
  )
})
