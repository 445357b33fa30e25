import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { JwtAuthenticator } from '../../src/auth/authenticator.js'
import { KeywrapError } from '../../src/errors.js'

const ISSUER = 'urn:keywrap:dev'
const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
const authenticator = new JwtAuthenticator([{ issuer: ISSUER, audience: 'keywrap', algorithms: ['EdDSA'], key: publicKey }], { maxTokenBytes: 8192 })
const now = () => Math.floor(Date.now() / 1000)

function token(claims: Record<string, unknown> = {}, key: CryptoKey = privateKey, header: Record<string, unknown> = {}) {
  const base = { iss: ISSUER, aud: 'keywrap', sub: 'alice', iat: now(), exp: now() + 600 }
  const payload = Object.fromEntries(Object.entries({ ...base, ...claims }).filter(([, value]) => value !== undefined))
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', ...header }).sign(key)
}

async function refused(authorization: string | undefined): Promise<KeywrapError> {
  const error = await authenticator.authenticate(authorization).then(
    () => assert.fail(`accepted ${authorization}`),
    (e: unknown) => e,
  )
  assert.ok(error instanceof KeywrapError && error.code === 'unauthenticated', String(error))
  return error
}

test('a valid development token names its subject and issuer', async () => {
  assert.deepEqual(await authenticator.authenticate(`Bearer ${await token()}`), { id: 'alice', issuer: ISSUER })
})

test('missing, malformed and non-bearer headers are refused', async () => {
  await refused(undefined)
  await refused('')
  await refused('Basic YWxpY2U6cHc=')
  await refused(`bearer ${await token()}`)
  await refused('Bearer a.b')
  await refused('Bearer a.b.c.d')
  await refused(`Bearer ${'a'.repeat(9000)}.b.c`)
})

const bad: [string, () => Promise<string>][] = [
  ['expired', () => token({ iat: now() - 7200, exp: now() - 3600 })],
  ['without exp', () => token({ exp: undefined })],
  ['without iat', () => token({ iat: undefined })],
  ['without sub', () => token({ sub: undefined })],
  ['from another issuer', () => token({ iss: 'https://evil.example' })],
  ['for another audience', () => token({ aud: 'someone-else' })],
  ['signed by another key', () => token({}, other.privateKey)],
  ['living longer than 24 h', () => token({ exp: now() + 25 * 3600 })],
  ['issued in the future', () => token({ iat: now() + 3600, exp: now() + 7200 })],
  ['not yet valid', () => token({ nbf: now() + 3600 })],
  ['with exp in milliseconds', () => token({ exp: Date.now() + 600_000 })],
  ['with alg none', async () => {
    const [header, payload] = (await token()).split('.')
    return `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.${header ? '' : ''}`
  }],
  ['with a signature spliced from another token', async () => {
    const [header, payload] = (await token({ sub: 'mallory' })).split('.')
    const signature = (await token()).split('.')[2]
    return `${header}.${payload}.${signature}`
  }],
]

for (const [name, make] of bad) {
  test(`a token ${name} is refused`, async () => {
    await refused(`Bearer ${await make()}`)
  })
}
