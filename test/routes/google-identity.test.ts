/**
 * Google-signed ID tokens accepted by configuration alone: the google preset (with its JWKS served on
 * loopback) and a grant naming the service account's email, through the whole app.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateSigningKey, startJwksServer, type JwksServer } from '../support/jwks-server.js'
import { sign, seconds } from '../auth/fixtures.js'
import { startTestApp, type TestApp } from '../support/test-app.js'

const AUDIENCE = 'https://keywrap-abc123-ew.a.run.app'
const google = await generateSigningKey('RS256', 'google-key-1')
let jwks: JwksServer
let t: TestApp

function idToken(email: string, claims: Record<string, unknown> = {}) {
  const now = seconds()
  return sign(
    google,
    { iss: 'accounts.google.com', aud: AUDIENCE, sub: '10457639', email, email_verified: true, iat: now, exp: now + 3600, ...claims },
    { typ: 'JWT' },
  )
}

before(async () => {
  jwks = await startJwksServer([google])
  t = await startTestApp({
    configFile: {
      auth: { issuers: [{ preset: 'google', audience: AUDIENCE, jwksUri: jwks.url }] },
      policy: {
        grants: [
          { principals: ['orders@p.iam.gserviceaccount.com'], keys: ['default'], operations: ['generateDataKey'], issuer: 'https://accounts.google.com' },
          { principals: ['billing@p.iam.gserviceaccount.com'], keys: ['default'], operations: ['unwrap'], issuer: 'https://accounts.google.com' },
        ],
      },
    },
  })
})
after(async () => {
  await t.close()
  await jwks.close()
})

test('a producer and a consumer identified by Google ID tokens, one grant each', async () => {
  const producer = await idToken('orders@p.iam.gserviceaccount.com')
  const consumer = await idToken('billing@p.iam.gserviceaccount.com')
  const generated = await t.call('generateDataKey', { token: producer, body: {} })
  assert.equal(generated.statusCode, 200, generated.body)
  assert.equal(t.audit.entries.at(-1)!.principal, 'orders@p.iam.gserviceaccount.com')
  assert.equal(t.audit.entries.at(-1)!.issuer, 'https://accounts.google.com')
  assert.equal((await t.call('unwrap', { token: producer, body: { wrappedKey: generated.json.wrappedKey } })).statusCode, 403)
  const unwrapped = await t.call('unwrap', { token: consumer, body: { wrappedKey: generated.json.wrappedKey } })
  assert.equal(unwrapped.json.plaintext, generated.json.plaintext)
})

test('an unverified email, another audience or an unknown key is refused with 401', async () => {
  for (const token of [
    await idToken('orders@p.iam.gserviceaccount.com', { email_verified: false }),
    await idToken('orders@p.iam.gserviceaccount.com', { aud: 'https://elsewhere.example' }),
    await sign(await generateSigningKey('RS256', 'google-key-1'), {
      iss: 'https://accounts.google.com',
      aud: AUDIENCE,
      sub: '1',
      email: 'orders@p.iam.gserviceaccount.com',
      email_verified: true,
      iat: seconds(),
      exp: seconds() + 600,
    }),
  ]) {
    const response = await t.call('generateDataKey', { token, body: {} })
    assert.equal(response.statusCode, 401)
    assert.match(String(response.headers['www-authenticate']), /error="invalid_token"/)
  }
})
