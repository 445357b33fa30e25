/**
 * The google preset, configured the way an operator would (a config section through readAuthSettings),
 * with the JWKS served on loopback: Google ID tokens name their principal by a verified email.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createAuthenticator } from '../../src/auth/create-authenticator.js'
import type { JwtAuthenticator } from '../../src/auth/authenticator.js'
import { GOOGLE_ISSUER, GOOGLE_JWKS_URI, readAuthSettings } from '../../src/config/auth-settings.js'
import { GrantPolicy } from '../../src/auth/policy.js'
import { generateSigningKey, startJwksServer, type JwksServer } from '../support/jwks-server.js'
import { bearer, refused, seconds, sign } from './fixtures.js'

const CLIENT_ID = '1234567890-keywrap.apps.googleusercontent.com'
const google = await generateSigningKey('RS256', 'f5f4bf46e52b31d9b6249f7309ad0338400680cd')
const googleEc = await generateSigningKey('ES256', 'ec-google')
let jwks: JwksServer
let authenticator: JwtAuthenticator

/** An ID token as Google's metadata server issues one for a service account (format=full). */
function idToken(claims: Record<string, unknown> = {}, key = google) {
  const now = seconds()
  return sign(
    key,
    {
      iss: 'https://accounts.google.com',
      aud: CLIENT_ID,
      azp: '104576393939298736471',
      sub: '104576393939298736471',
      email: 'batch@project.iam.gserviceaccount.com',
      email_verified: true,
      iat: now,
      exp: now + 3600,
      ...claims,
    },
    { typ: 'JWT' },
  )
}

before(async () => {
  jwks = await startJwksServer([google, googleEc])
  const violations: string[] = []
  const settings = readAuthSettings({ issuers: [{ preset: 'google', audience: CLIENT_ID, jwksUri: jwks.url }] }, 'production', violations)
  assert.deepEqual(violations, [])
  authenticator = await createAuthenticator(settings, { home: '/nonexistent', mode: 'production' })
  await authenticator.warm()
})

after(() => jwks.close())

test('the preset expands to Google: both issuer spellings, RS256 only, email as principal, Google JWKS by default', () => {
  const violations: string[] = []
  const [issuer] = readAuthSettings({ issuers: [{ preset: 'google', audience: CLIENT_ID }] }, 'production', violations).issuers
  assert.deepEqual(violations, [])
  assert.deepEqual(issuer, {
    issuer: GOOGLE_ISSUER,
    otherSpellings: ['accounts.google.com'],
    audience: [CLIENT_ID],
    keys: { kind: 'jwksUri', uri: GOOGLE_JWKS_URI },
    algorithms: ['RS256'],
    principalClaim: 'email',
  })
})

test('an ID token with a verified email is accepted under either issuer spelling, as one issuer', async () => {
  for (const iss of ['https://accounts.google.com', 'accounts.google.com']) {
    assert.deepEqual(await authenticator.authenticate(bearer(await idToken({ iss }))), {
      id: 'batch@project.iam.gserviceaccount.com',
      issuer: GOOGLE_ISSUER,
    })
  }
})

test('grants name Google principals by email and the canonical issuer', async () => {
  const principal = await authenticator.authenticate(bearer(await idToken({ iss: 'accounts.google.com' })))
  const policy = new GrantPolicy([{ principals: ['*@project.iam.gserviceaccount.com'], keys: ['pay-*'], operations: ['unwrap'], issuer: GOOGLE_ISSUER }])
  assert.equal(policy.allows(principal, 'pay-eu', 'unwrap'), true)
})

const refusedTokens: [string, Record<string, unknown>][] = [
  ['email_verified false', { email_verified: false }],
  ['email_verified missing', { email_verified: undefined }],
  ['email_verified as the string "true"', { email_verified: 'true' }],
  ['no email', { email: undefined }],
  ['an empty email', { email: '' }],
  ['another client id as audience', { aud: 'someone-else.apps.googleusercontent.com' }],
  ['an issuer spelled another way', { iss: 'http://accounts.google.com' }],
  ['an expired token', { iat: seconds() - 7200, exp: seconds() - 3600 }],
]

for (const [name, claims] of refusedTokens) {
  test(`an ID token with ${name} is refused`, async () => {
    await refused(authenticator, bearer(await idToken(claims)))
  })
}

test('an ES256 token, even with a key in the same set, is refused: Google signs RS256', async () => {
  await refused(authenticator, bearer(await idToken({}, googleEc)))
})

test('the preset takes no other fields, and needs an audience', () => {
  const violations: string[] = []
  readAuthSettings(
    {
      issuers: [
        { preset: 'google', principalClaim: 'sub', algorithms: ['ES256'] },
        { preset: 'gitlab', audience: 'x' },
      ],
    },
    'production',
    violations,
  )
  assert.deepEqual(violations, [
    'auth.issuers[0].principalClaim is not a field of the google preset (known: preset, audience, jwksUri)',
    'auth.issuers[0].algorithms is not a field of the google preset (known: preset, audience, jwksUri)',
    'auth.issuers[0].audience must be a non-empty string or list of strings (the aud tokens must carry)',
    'auth.issuers[1].preset: "gitlab" is not a preset (known: google)',
  ])
})
