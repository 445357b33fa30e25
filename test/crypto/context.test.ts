import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { encodeAad } from '../../src/crypto/context.js'

const contextArb = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 12 }), { maxKeys: 6 })

test('the encoding does not depend on the order of the context entries', () => {
  fc.assert(
    fc.property(contextArb, (context) => {
      const reversed = Object.fromEntries(Object.entries(context).reverse())
      assert.deepEqual(encodeAad('a', 1, reversed), encodeAad('a', 1, context))
    }),
  )
})

test('different contexts or aliases never encode alike', () => {
  fc.assert(
    fc.property(fc.string(), contextArb, fc.string(), contextArb, (aliasA, contextA, aliasB, contextB) => {
      const same = aliasA === aliasB && JSON.stringify(Object.entries(contextA).sort()) === JSON.stringify(Object.entries(contextB).sort())
      assert.equal(encodeAad(aliasA, 1, contextA).equals(encodeAad(aliasB, 1, contextB)), same)
    }),
  )
})

test('length prefixes keep shifted boundaries apart', () => {
  assert.notDeepEqual(encodeAad('a', 1, { ab: 'c' }), encodeAad('a', 1, { a: 'bc' }))
  assert.notDeepEqual(encodeAad('a', 1, { a: '' }), encodeAad('a', 1, {}))
  assert.notDeepEqual(encodeAad('ab', 1, {}), encodeAad('a', 1, { b: '' }))
})

test('the bytes are the layout every wrapped key was made with (known answers)', () => {
  assert.equal(encodeAad('default', 3, undefined).toString('hex'), '6b6579777261702f6161642f76310000000764656661756c740000000300000000')
  assert.equal(
    encodeAad('payments', 12, { tenant: 'acme', région: 'eu-west1', '': '' }).toString('hex'),
    '6b6579777261702f6161642f7631000000087061796d656e74730000000c0000000300000000000000000000000772c3a967696f6e0000000865752d77657374310000000674656e616e740000000461636d65',
  )
})

/** The layout spelled out part by part: domain, alias, version, count, then name/value pairs by their bytes. */
function referenceAad(alias: string, version: number, context: Record<string, string>): Buffer {
  const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])
  const field = (text: string) => Buffer.concat([u32(Buffer.byteLength(text)), Buffer.from(text)])
  const pairs = Object.entries(context).sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  return Buffer.concat([Buffer.from('keywrap/aad/v1'), field(alias), u32(version), u32(pairs.length), ...pairs.flatMap(([n, v]) => [field(n), field(v)])])
}

test('the encoding is that layout for any alias, version and context', () => {
  fc.assert(
    fc.property(
      fc.string(),
      fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      fc.dictionary(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), { maxKeys: 6 }),
      (alias, version, context) => {
        assert.deepEqual(encodeAad(alias, version, context), referenceAad(alias, version, context))
      },
    ),
    { numRuns: 300 },
  )
})

test('no context and an empty context are the same', () => {
  assert.deepEqual(encodeAad('x', 1, undefined), encodeAad('x', 1, {}))
})

test('the KEK version is bound too', () => {
  assert.notDeepEqual(encodeAad('a', 1, { k: 'v' }), encodeAad('a', 2, { k: 'v' }))
})

test('lone surrogates are not well-formed (they would all encode as U+FFFD)', async () => {
  const { isWellFormedContext } = await import('../../src/crypto/context.js')
  assert.equal(isWellFormedContext({ tenant: 'acme', emoji: '😀' }), true)
  for (const bad of ['\ud800', '\udfff', 'a\ud801b', '\udc00\ud800']) {
    assert.equal(isWellFormedContext({ tenant: bad }), false, JSON.stringify(bad))
    assert.equal(isWellFormedContext({ [bad]: 'x' }), false)
  }
})
