/** The client binds a context with the same canonical encoding the service puts in its wrapped keys' AAD. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { encodeContext } from '../../client/src/canonical-context.js'
import { encodeAad } from '../../src/crypto/context.js'

test("encodeContext is the context part of the service's AAD, for any context and key order", () => {
  const alias = 'default'
  // The service's AAD: domain, alias (uint32 length + UTF-8), KEK version (uint32), then the context.
  const prefixLength = 'keywrap/aad/v1'.length + 4 + alias.length + 4
  fc.assert(
    fc.property(
      fc.dictionary(fc.string({ minLength: 1, maxLength: 8, unit: 'grapheme' }), fc.string({ maxLength: 8, unit: 'grapheme' }), { maxKeys: 6 }),
      (context) => {
        const reversed = Object.fromEntries(Object.entries(context).reverse())
        assert.deepEqual(encodeContext(reversed), encodeAad(alias, 7, context).subarray(prefixLength))
      },
    ),
  )
})

test('a lone surrogate is refused, as the service refuses it', () => {
  assert.throws(() => encodeContext({ name: 'a\uD800' }), { name: 'KeywrapError', code: 'invalid_request' })
  assert.deepEqual(encodeContext(undefined), encodeContext({}))
})
