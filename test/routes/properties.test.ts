import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { parseWrappedKey } from '../../src/crypto/wrapped-key.js'
import { startTestApp, type TestApp } from '../support/test-app.js'

let t: TestApp
let token: string
before(async () => {
  t = await startTestApp({ env: { KEYWRAP_CACHE_MAX_ENTRIES: '0' } })
  token = await t.token()
})
after(() => t.close())

// fast-check likes to try "__proto__" as a key; bodies with that member are refused before any key
// operation (test/routes/errors.test.ts), so contexts here do without it.
const contextKey = fc.string({ minLength: 1, maxLength: 20 }).filter((key) => key !== '__proto__')
const contextArb = fc.option(fc.dictionary(contextKey, fc.string({ maxLength: 40 }), { maxKeys: 5 }), { nil: undefined })

test('unwrap(wrap(key, context), context) = key for random keys and contexts', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), contextArb, async (bytes, context) => {
      const plaintext = Buffer.from(bytes).toString('base64')
      const wrapped = await t.call('wrap', { token, body: { plaintext, ...(context && { context }) } })
      assert.equal(wrapped.statusCode, 200, wrapped.body)
      const shuffled = context && Object.fromEntries(Object.entries(context).reverse())
      const unwrapped = await t.call('unwrap', { token, body: { wrappedKey: wrapped.json.wrappedKey, ...(shuffled && { context: shuffled }) } })
      assert.equal(unwrapped.statusCode, 200, unwrapped.body)
      assert.equal(unwrapped.json.plaintext, plaintext)
    }),
    { numRuns: 150 },
  )
})

test('any one-character change to a wrapped key is refused, and nothing is released', async () => {
  const { json } = await t.call('generateDataKey', { token, body: { context: { k: 'v' } } })
  const wrappedKey: string = json.wrappedKey
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/~ '
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: wrappedKey.length - 1 }), fc.constantFrom(...alphabet), async (index, replacement) => {
      fc.pre(wrappedKey[index] !== replacement)
      const changed = wrappedKey.slice(0, index) + replacement + wrappedKey.slice(index + 1)
      const response = await t.call('unwrap', { token, body: { wrappedKey: changed, context: { k: 'v' } } })
      assert.ok(response.statusCode >= 400 && response.statusCode < 500, `${changed} → ${response.statusCode}`)
      assert.ok(!response.body.includes(json.plaintext))
      // Out of the format: 400 without any key; in it, the provider's authentication refuses it.
      if (!parseWrappedKey(changed)) assert.equal(response.json.code, 'invalid_wrapped_key', changed)
      else assert.notEqual(response.json.code, 'invalid_wrapped_key', changed)
    }),
    { numRuns: 300 },
  )
  // Dropping or adding a character is refused too: 400 when that leaves the format, else 422.
  for (const changed of [wrappedKey.slice(0, -1), `${wrappedKey}A`, `${wrappedKey}AAAA`, wrappedKey.slice(0, -4), wrappedKey.slice(1)]) {
    const expected = parseWrappedKey(changed) ? 422 : 400
    assert.equal((await t.call('unwrap', { token, body: { wrappedKey: changed, context: { k: 'v' } } })).statusCode, expected, changed)
  }
})
