/**
 * Entry names and values are shared by every instance of a fleet, old and new: these known answers
 * (made by the first implementation) pin their bytes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { deriveEpochKeys, entryName, generationName, openEntry, sealEntry } from '../../src/cache/cache-crypto.js'
import { encodeAad } from '../../src/crypto/context.js'

const keys = deriveEpochKeys(Buffer.alloc(32, 7))
const REDIS_KEY = 'kw:dek:llemFEuNdHdAM_2l_wcAdTYgcq6geDn6J7lXqd0MrRg'

test('entry and generation names are the ones every instance computes (known answers)', () => {
  const key = {
    alias: 'payments',
    wrappedKey: `kw1.3.${Buffer.alloc(64, 9).toString('base64url')}`,
    aad: encodeAad('payments', 3, { tenant: 'acme', région: 'eu' }),
  }
  assert.equal(entryName(keys, key, Buffer.alloc(16, 5)), 'llemFEuNdHdAM_2l_wcAdTYgcq6geDn6J7lXqd0MrRg')
  assert.equal(
    entryName(keys, { alias: 'dé', wrappedKey: 'kw1.1.AA', aad: encodeAad('dé', 1, undefined) }, Buffer.alloc(16, 1)),
    'G7jXClrT1-jevp3At2halSprYiUYwa-ZfX4yh0vtDOU',
  )
  assert.equal(generationName(keys, 'payments'), '8VaO7HYzaFocIzfjOcl7BUSgbhNq1kiHDsE066SrPmY')
})

test('a value sealed by the first implementation opens, and one sealed now opens the same way', () => {
  const old = Buffer.from(
    '0100000003000001a220f51baf621a40bd389a16473bac5a16f73552d1efcb0005ecea1223b22286a043e623f664104bf54845106fcb035b2ea7d167aec65f19c81ffc89d1acd135c0',
    'hex',
  )
  const expected = { plaintext: Buffer.alloc(32, 0xab), version: 3, expiresAt: 1795849264047 }
  assert.deepEqual(openEntry(keys, REDIS_KEY, old), expected)
  assert.deepEqual(openEntry(keys, REDIS_KEY, sealEntry(keys, REDIS_KEY, expected, expected.expiresAt)), expected)
})

test('a value does not open under another Redis key, other keys, or with any byte changed', () => {
  const value = sealEntry(keys, REDIS_KEY, { plaintext: Buffer.alloc(32, 1), version: 1 }, Date.now() + 60_000)
  assert.equal(openEntry(keys, `${REDIS_KEY}x`, value), undefined)
  assert.equal(openEntry(deriveEpochKeys(Buffer.alloc(32, 8)), REDIS_KEY, value), undefined)
  for (let index = 0; index < value.length; index++) {
    const tampered = Buffer.from(value)
    tampered[index]! ^= 1
    assert.equal(openEntry(keys, REDIS_KEY, tampered), undefined, `byte ${index}`)
  }
})
