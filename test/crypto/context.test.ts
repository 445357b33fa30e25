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
