/**
 * The verified-token cache, on a frozen clock: a token seen before costs a hash, never a signature
 * check, and is never accepted from the cache at or after its `exp`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { exportSPKI } from 'jose'
import { createAuthenticator } from '../../src/auth/create-authenticator.js'
import { generateSigningKey } from '../support/jwks-server.js'
import { bearer, jwksIssuer, refused, segments, settingsWith, sign } from './fixtures.js'

const key = await generateSigningKey('EdDSA', 'ed')
const pem = await exportSPKI(key.publicKey)
const T0 = Date.parse('2026-01-15T12:00:00Z')

async function frozen(tokenCacheEntries = 10_000) {
  const clock = { now: T0 }
  const issuer = { ...jwksIssuer(''), keys: { kind: 'publicKeyPem' as const, pem }, algorithms: ['EdDSA' as const] }
  const authenticator = await createAuthenticator(settingsWith([issuer], { tokenCacheEntries }), {
    home: '/nonexistent',
    mode: 'production',
    now: () => clock.now,
  })
  return { clock, authenticator }
}

const tokenAt = (now: number, claims: Record<string, unknown> = {}) => sign(key, claims, {}, now)

test('the second verification of a token costs no signature check', async () => {
  const { authenticator } = await frozen()
  const token = bearer(await tokenAt(T0))
  const principal = await authenticator.authenticate(token)
  assert.deepEqual(authenticator.stats(), { signatureChecks: 1, cacheHits: 0, cachedTokens: 1 })
  for (let index = 0; index < 100; index++) assert.equal(await authenticator.authenticate(token), principal)
  assert.deepEqual(authenticator.stats(), { signatureChecks: 1, cacheHits: 100, cachedTokens: 1 })
  assert.ok(Object.isFrozen(principal))
})

test('a cached token used after its expiry is refused', async () => {
  const { clock, authenticator } = await frozen()
  const token = bearer(await tokenAt(T0)) // exp = T0 + 600 s
  await authenticator.authenticate(token)
  clock.now = T0 + 599_000
  await authenticator.authenticate(token)
  assert.equal(authenticator.stats().cacheHits, 1)
  clock.now = T0 + 631_000
  await refused(authenticator, token)
  assert.deepEqual(authenticator.stats(), { signatureChecks: 2, cacheHits: 1, cachedTokens: 0 })
})

test('at exp the cache no longer answers: only a full verification (with its clock tolerance) may', async () => {
  const { clock, authenticator } = await frozen()
  const token = bearer(await tokenAt(T0))
  await authenticator.authenticate(token)
  clock.now = T0 + 600_000
  await authenticator.authenticate(token)
  assert.deepEqual(authenticator.stats(), { signatureChecks: 2, cacheHits: 0, cachedTokens: 0 }, 'verified again, and not cached again')
})

test('a token one character away from a cached one is not served from the cache', async () => {
  const { authenticator } = await frozen()
  const token = await tokenAt(T0)
  await authenticator.authenticate(bearer(token))
  const [header, claims, signature] = segments(token)
  const flipped = `${signature.slice(0, -2)}${signature.at(-2) === 'A' ? 'B' : 'A'}${signature.at(-1)}`
  await refused(authenticator, bearer(`${header}.${claims}.${flipped}`))
  assert.equal(authenticator.stats().signatureChecks, 2)
})

test('refused tokens are not remembered: each attempt is checked', async () => {
  const { authenticator } = await frozen()
  const token = bearer(await tokenAt(T0, { aud: 'someone-else' }))
  await refused(authenticator, token)
  await refused(authenticator, token)
  assert.deepEqual(authenticator.stats(), { signatureChecks: 2, cacheHits: 0, cachedTokens: 0 })
})

test('the cache is bounded, least recently used first out', async () => {
  const { authenticator } = await frozen(2)
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(async (sub) => bearer(await tokenAt(T0, { sub }))))
  await authenticator.authenticate(a!)
  await authenticator.authenticate(b!)
  await authenticator.authenticate(a!) // a is now the most recently used
  await authenticator.authenticate(c!) // evicts b
  assert.deepEqual(authenticator.stats(), { signatureChecks: 3, cacheHits: 1, cachedTokens: 2 })
  await authenticator.authenticate(a!)
  await authenticator.authenticate(b!)
  assert.deepEqual(authenticator.stats(), { signatureChecks: 4, cacheHits: 2, cachedTokens: 2 })
})

test('tokenCacheEntries 0 turns the cache off', async () => {
  const { authenticator } = await frozen(0)
  const token = bearer(await tokenAt(T0))
  await authenticator.authenticate(token)
  await authenticator.authenticate(token)
  assert.deepEqual(authenticator.stats(), { signatureChecks: 2, cacheHits: 0, cachedTokens: 0 })
})

test('close() forgets every cached token', async () => {
  const { authenticator } = await frozen()
  const token = bearer(await tokenAt(T0))
  await authenticator.authenticate(token)
  authenticator.close()
  await authenticator.authenticate(token)
  assert.equal(authenticator.stats().signatureChecks, 2)
})
