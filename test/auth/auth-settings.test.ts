/** readAuthSettings: defaults, every field read, and one violation per problem naming its setting. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { resolve } from 'node:path'
import { defaultAuthSettings, readAuthSettings, type AuthSettings } from '../../src/config/auth-settings.js'

const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString()
const RSA_PEM = spki(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey)
const EC_PEM = spki(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)
const ED_PEM = spki(generateKeyPairSync('ed25519').publicKey)

function read(section: unknown, mode: 'development' | 'production' = 'production'): { settings: AuthSettings; violations: string[] } {
  const violations: string[] = []
  return { settings: readAuthSettings(section, mode, violations), violations }
}

test('without an auth section: the defaults, with the development issuer only in development', () => {
  assert.deepEqual(read(undefined, 'development'), { settings: defaultAuthSettings('development'), violations: [] })
  const { settings } = read(undefined, 'production')
  assert.equal(settings.devIssuer, false)
  assert.deepEqual(
    { ...settings, devIssuer: undefined },
    {
      devIssuer: undefined,
      audience: 'keywrap',
      maxTokenBytes: 8192,
      maxTokenLifetimeSeconds: 86_400,
      clockToleranceSeconds: 30,
      tokenCacheEntries: 10_000,
      jwks: { timeoutSeconds: 5, cooldownSeconds: 30, cacheMaxAgeSeconds: 600, staleIfErrorSeconds: 3600 },
      issuers: [],
    },
  )
})

test('the settings of before are read as before, with the same violations', () => {
  assert.deepEqual(read({ devIssuer: true, audience: 'kw', maxTokenBytes: 4096 }, 'development').violations, [])
  const { violations } = read({ devIssuer: 'yes', extra: 1 })
  assert.equal(violations.length, 2)
  assert.ok(violations.some((v) => v.startsWith('auth.devIssuer must be true or false')))
  assert.ok(violations.some((v) => v.startsWith('auth.extra is not a setting')))
  assert.deepEqual(read([]).violations, ['auth must be an object'])
  assert.deepEqual(read({ audience: '', maxTokenBytes: 100 }).violations, [
    'auth.audience must be a non-empty string',
    'auth.maxTokenBytes must be a whole number from 512 to 16384',
  ])
})

test('every field and every kind of issuer, read and normalised', () => {
  const { settings, violations } = read({
    devIssuer: false,
    audience: 'keywrap',
    maxTokenBytes: 4096,
    maxTokenLifetimeSeconds: 3600,
    clockToleranceSeconds: 10,
    tokenCacheEntries: 500,
    jwks: { timeoutSeconds: 2, cooldownSeconds: 60, cacheMaxAgeSeconds: 300, staleIfErrorSeconds: 0 },
    issuers: [
      {
        issuer: 'https://login.example',
        audience: ['api://keywrap', 'keywrap'],
        jwksUri: 'https://login.example/keys',
        algorithms: ['RS256', 'PS256', 'RS256'],
      },
      { issuer: 'https://ci.example', audience: 'keywrap', jwksFile: 'config/ci-jwks.json', principalClaim: 'email' },
      { issuer: 'urn:example:rsa', audience: 'keywrap', publicKeyPem: RSA_PEM },
      { issuer: 'urn:example:ec', audience: 'keywrap', publicKeyPem: EC_PEM },
      { issuer: 'urn:example:ed', audience: 'keywrap', publicKeyPem: ED_PEM },
      { issuer: 'urn:example:local', audience: 'keywrap', jwksUri: 'http://127.0.0.1:8081/certs' },
      { preset: 'google', audience: 'client.apps.googleusercontent.com' },
    ],
  })
  assert.deepEqual(violations, [])
  assert.equal(settings.maxTokenLifetimeSeconds, 3600)
  assert.deepEqual(settings.jwks, { timeoutSeconds: 2, cooldownSeconds: 60, cacheMaxAgeSeconds: 300, staleIfErrorSeconds: 0 })
  const [login, ci, rsa, ec, ed, local, google] = settings.issuers
  assert.deepEqual(login, {
    issuer: 'https://login.example',
    otherSpellings: [],
    audience: ['api://keywrap', 'keywrap'],
    keys: { kind: 'jwksUri', uri: 'https://login.example/keys' },
    algorithms: ['RS256', 'PS256'],
    principalClaim: 'sub',
  })
  assert.deepEqual(ci?.keys, { kind: 'jwksFile', path: resolve('config/ci-jwks.json') })
  assert.equal(ci?.principalClaim, 'email')
  assert.deepEqual(
    [ci, rsa, ec, ed, local].map((issuer) => issuer?.algorithms),
    [['RS256'], ['RS256'], ['ES256'], ['EdDSA'], ['RS256']],
  )
  assert.equal(google?.issuer, 'https://accounts.google.com')
})

test('each issuer problem is one violation naming its setting', () => {
  const { violations } = read(
    {
      issuers: [
        'https://login.example',
        { audience: 'keywrap', jwksUri: 'https://a.example/keys' },
        { issuer: 'urn:keywrap:dev', audience: 'keywrap', jwksUri: 'https://a.example/keys' },
        { issuer: 'https://b.example', audience: [], jwksUri: 'https://b.example/keys' },
        { issuer: 'https://c.example', audience: 'keywrap' },
        { issuer: 'https://d.example', audience: 'keywrap', jwksUri: 'https://d.example/keys', publicKeyPem: RSA_PEM },
        { issuer: 'https://e.example', audience: 'keywrap', jwksUri: 'http://e.example/keys' },
        { issuer: 'https://f.example', audience: 'keywrap', jwksUri: 'not a url' },
        { issuer: 'https://g.example', audience: 'keywrap', jwksUri: 'https://user:pw@g.example/keys' },
        { issuer: 'https://h.example', audience: 'keywrap', jwksUri: 'https://h.example/keys', algorithms: ['none', 'HS256', 'RS1', 'ES256'] },
        { issuer: 'https://i.example', audience: 'keywrap', publicKeyPem: EC_PEM, algorithms: ['RS256'] },
        { issuer: 'https://j.example', audience: 'keywrap', jwksUri: 'https://j.example/keys', algorithms: [] },
        { issuer: 'https://k.example', audience: 'keywrap', jwksUri: 'https://k.example/keys', principalClaim: 'name', jku: 'x' },
        { issuer: 'https://a.example', audience: 'keywrap', jwksFile: '' },
        { issuer: 'https://login.example', audience: 'keywrap', jwksUri: 'https://login.example/keys' },
        { issuer: 'https://login.example', audience: 'keywrap', jwksUri: 'https://login.example/keys' },
        { issuer: 'accounts.google.com', audience: 'keywrap', jwksUri: 'https://www.googleapis.com/oauth2/v3/certs' },
        { preset: 'google', audience: 'client' },
      ],
    },
    'development',
  )
  assert.deepEqual(violations, [
    'auth.issuers[0] must be an object with issuer, audience and one of jwksUri, jwksFile, publicKeyPem (or preset: google)',
    "auth.issuers[1].issuer must be a non-empty string (the tokens' iss)",
    'auth.issuers[2].issuer: urn:keywrap:dev is the development issuer; turn it on with auth.devIssuer instead',
    'auth.issuers[3].audience must be a non-empty string or list of strings (the aud tokens must carry)',
    'auth.issuers[4] needs exactly one key source: jwksUri, jwksFile, publicKeyPem',
    'auth.issuers[5] needs exactly one key source: jwksUri, jwksFile, publicKeyPem (has jwksUri and publicKeyPem)',
    'auth.issuers[6].jwksUri must be an https:// URL (http:// only for loopback)',
    'auth.issuers[7].jwksUri must be an https:// URL (http:// only for loopback)',
    'auth.issuers[8].jwksUri must not carry a user name or password',
    'auth.issuers[9].algorithms: "none" is no signature at all; "HS256" is symmetric: the issuer\'s public key would be the secret; "RS1" is not accepted (accepted: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)',
    'auth.issuers[10].algorithms: "RS256" does not fit the publicKeyPem key (it fits ES256) (accepted: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)',
    'auth.issuers[11].algorithms must be a non-empty list of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA',
    'auth.issuers[12].jku is not an issuer field (known: issuer, audience, jwksUri, jwksFile, publicKeyPem, algorithms, principalClaim, typ, or preset)',
    'auth.issuers[12].principalClaim must be sub or email (email only from tokens with email_verified: true)',
    'auth.issuers[13].jwksFile must be the path of a JWKS file',
    'auth.issuers[15]: issuer "https://login.example" is already configured by auth.issuers[14]',
    'auth.issuers[17]: issuer "accounts.google.com" is already configured by auth.issuers[16]',
  ])
  for (const violation of violations) assert.match(violation, /^auth\.issuers\[\d+\]/)
})

test('PEM keys: public, readable, strong enough, of a usable type', () => {
  const weak = spki(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)
  const privatePem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const p521 = spki(generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey)
  const x25519 = spki(generateKeyPairSync('x25519').publicKey)
  const issuer = (publicKeyPem: unknown) => ({ issuer: `urn:${Math.random()}`, audience: 'keywrap', publicKeyPem })
  const { violations } = read({
    issuers: [issuer(weak), issuer(privatePem), issuer(p521), issuer('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----'), issuer(42), issuer(x25519)],
  })
  assert.deepEqual(violations, [
    'auth.issuers[0].publicKeyPem is a 1024-bit RSA key; at least 2048 bits are required',
    'auth.issuers[1].publicKeyPem is a private key; configure the public key only (and treat this one as exposed)',
    'auth.issuers[2].publicKeyPem is an unsupported key (ec secp521r1); use RSA, EC P-256/P-384 or Ed25519',
    'auth.issuers[3].publicKeyPem is not a readable PEM public key',
    'auth.issuers[4].publicKeyPem must be a PEM public key (-----BEGIN PUBLIC KEY-----)',
    'auth.issuers[5].publicKeyPem is an unsupported key (x25519); use RSA, EC P-256/P-384 or Ed25519',
  ])
})

test('http:// key sets only on loopback', () => {
  for (const uri of ['http://127.0.0.1:9000/certs', 'http://localhost/certs', 'http://[::1]:9000/certs', 'https://login.example/certs']) {
    assert.deepEqual(read({ issuers: [{ issuer: 'i', audience: 'a', jwksUri: uri }] }).violations, [], uri)
  }
  for (const uri of ['http://10.0.0.1/certs', 'http://127.0.0.1.evil.example/certs', 'ftp://login.example/certs', 'file:///etc/jwks.json']) {
    assert.equal(read({ issuers: [{ issuer: 'i', audience: 'a', jwksUri: uri }] }).violations.length, 1, uri)
  }
})

test('the development issuer name is taken only while the development issuer is on', () => {
  const clash = { issuers: [{ issuer: 'urn:keywrap:dev', audience: 'a', jwksUri: 'https://x.example/k' }] }
  assert.equal(read(clash, 'development').violations.length, 1)
  assert.equal(read({ ...clash, devIssuer: false }, 'development').violations.length, 1, 'reserved either way')
})

test('numbers out of range and unknown fields, each named', () => {
  const { violations } = read({
    maxTokenLifetimeSeconds: 0,
    clockToleranceSeconds: 301,
    tokenCacheEntries: -1,
    jwks: { timeoutSeconds: 0.5, cooldownSeconds: 0, cacheMaxAgeSeconds: 10, staleIfErrorSeconds: '1h', refresh: true },
    issuers: {},
  })
  assert.deepEqual(violations, [
    'auth.maxTokenLifetimeSeconds must be a whole number from 60 to 86400',
    'auth.clockToleranceSeconds must be a whole number from 0 to 300',
    'auth.tokenCacheEntries must be a whole number from 0 to 1000000',
    'auth.jwks.refresh is not a setting (known: timeoutSeconds, cooldownSeconds, cacheMaxAgeSeconds, staleIfErrorSeconds)',
    'auth.jwks.timeoutSeconds must be a whole number from 1 to 60',
    'auth.jwks.cooldownSeconds must be a whole number from 1 to 3600',
    'auth.jwks.cacheMaxAgeSeconds must be a whole number from 60 to 86400',
    'auth.jwks.staleIfErrorSeconds must be a whole number from 0 to 86400',
    'auth.issuers must be a list of issuers',
  ])
  assert.deepEqual(read({ jwks: 5 }).violations, ['auth.jwks must be an object'])
})

test('typ: a non-empty list of media types, null for tokens without typ; anything else is a violation', () => {
  const issuer = { issuer: 'https://k.example', audience: 'keywrap', jwksUri: 'https://k.example/keys' }
  const accepted = read({ issuers: [{ ...issuer, typ: [null, 'at+jwt'] }] })
  assert.deepEqual(accepted.violations, [])
  assert.deepEqual(accepted.settings.issuers[0]!.acceptedTypes, [null, 'at+jwt'])
  assert.equal(read({ issuers: [issuer] }).settings.issuers[0]!.acceptedTypes, undefined, 'absent: the default set')
  for (const typ of [[], 'JWT', [5], ['JWT', ''], ['a b']]) {
    assert.deepEqual(
      read({ issuers: [{ ...issuer, typ }] }).violations,
      ['auth.issuers[0].typ must be a non-empty list of typ values (e.g. ["JWT", "at+jwt"]), null allowing tokens without typ'],
      JSON.stringify(typ),
    )
  }
})
