import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { encodeAad } from '../../src/crypto/context.js'

const contextArb = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 12 }), { maxKeys: 6 })

test('the encoding does not depend on the order of the context entries', () => {
  fc.assert(
    fc.property(contextArb, (context) => {
      const reversed = Object.fromEntries(Object.entries(context).reverse())
      assert.deepEqual(encodeAad('a', reversed), encodeAad('a', context))
    }),
  )
})

test('different contexts or aliases never encode alike', () => {
  fc.assert(
    fc.property(fc.string(), contextArb, fc.string(), contextArb, (aliasA, contextA, aliasB, contextB) => {
      const same = aliasA === aliasB && JSON.stringify(Object.entries(contextA).sort()) === JSON.stringify(Object.entries(contextB).sort())
      assert.equal(encodeAad(aliasA, contextA).equals(encodeAad(aliasB, contextB)), same)
    }),
  )
})

test('length prefixes keep shifted boundaries apart', () => {
  assert.notDeepEqual(encodeAad('a', { ab: 'c' }), encodeAad('a', { a: 'bc' }))
  assert.notDeepEqual(encodeAad('a', { a: '' }), encodeAad('a', {}))
  assert.notDeepEqual(encodeAad('ab', {}), encodeAad('a', { b: '' }))
})

test('no context and an empty context are the same', () => {
  assert.deepEqual(encodeAad('x', undefined), encodeAad('x', {}))
})
