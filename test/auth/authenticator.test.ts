import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { buildApp } from '../../src/app.js'
import { AuthFailure, JwtAuthenticator } from '../../src/auth/authenticator.js'
import type { Logger } from '../../src/support/logger.js'
import { createAuthenticator } from '../../src/auth/create-authenticator.js'
import { loadDevIssuer, mintDevToken } from '../../src/auth/dev-issuer.js'
import { composeDependencies } from '../../src/compose.js'
import { defaultAuthSettings } from '../../src/config/auth-settings.js'
import { DEV_ISSUER } from '../../src/config/config.js'
import { loadConfig } from '../../src/config/load-config.js'
import { KeywrapError } from '../../src/errors.js'
import { generateSigningKey, startJwksServer } from '../support/jwks-server.js'
import { jwksIssuer, settingsWith, sign } from './fixtures.js'

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
  await refused(`Token ${await token()}`)
  assert.deepEqual(await authenticator.authenticate(`bearer ${await token()}`), { id: 'alice', issuer: ISSUER }, 'the scheme is case-insensitive')
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
  [
    'with alg none',
    async () => {
      const [header, payload] = (await token()).split('.')
      return `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.${header ? '' : ''}`
    },
  ],
  [
    'with a signature spliced from another token',
    async () => {
      const [header, payload] = (await token({ sub: 'mallory' })).split('.')
      const signature = (await token()).split('.')[2]
      return `${header}.${payload}.${signature}`
    },
  ],
]

for (const [name, make] of bad) {
  test(`a token ${name} is refused`, async () => {
    await refused(`Bearer ${await make()}`)
  })
}

// createAuthenticator: the development issuer, key files, and what the HTTP layer makes of refusals.

test('the development issuer is trusted outside production unless turned off', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-auth-'))
  try {
    const dev = await loadDevIssuer(home)
    const devToken = `Bearer ${await mintDevToken(dev, { subject: 'alice', audience: 'keywrap', ttlSeconds: 600 })}`
    const on = await createAuthenticator(defaultAuthSettings('development'), { home, mode: 'development' })
    assert.deepEqual(await on.authenticate(devToken), { id: 'alice', issuer: DEV_ISSUER })
    const off = await createAuthenticator({ ...defaultAuthSettings('development'), devIssuer: false }, { home, mode: 'development' })
    await refusedBy(off, devToken)
    // Production refuses devIssuer: true in load-config; the factory does not trust it either.
    const production = await createAuthenticator({ ...defaultAuthSettings('production'), devIssuer: true }, { home, mode: 'production' })
    await refusedBy(production, devToken)
  } finally {
    await rm(home, { recursive: true, force: true })
  }
})

test('a JWKS file and a PEM key are read once, at start-up', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-auth-'))
  try {
    const rsa = await generateSigningKey('RS256', 'file-1')
    const ec = await generateSigningKey('ES256', 'pem-1')
    const path = join(home, 'jwks.json')
    await writeFile(path, JSON.stringify({ keys: [rsa.jwk] }))
    const settings = settingsWith([
      { ...jwksIssuer(''), issuer: 'https://file.example', keys: { kind: 'jwksFile', path } },
      { ...jwksIssuer(''), issuer: 'https://pem.example', keys: { kind: 'publicKeyPem', pem: await exportSPKI(ec.publicKey) }, algorithms: ['ES256'] },
    ])
    const authenticator = await createAuthenticator(settings, { home, mode: 'production' })
    await writeFile(path, JSON.stringify({ keys: [] }))
    assert.deepEqual(await authenticator.authenticate(`Bearer ${await sign(rsa, { iss: 'https://file.example' })}`), {
      id: 'alice',
      issuer: 'https://file.example',
    })
    assert.deepEqual(await authenticator.authenticate(`Bearer ${await sign(ec, { iss: 'https://pem.example' })}`), {
      id: 'alice',
      issuer: 'https://pem.example',
    })
    await refusedBy(authenticator, `Bearer ${await sign(ec, { iss: 'https://file.example' })}`)
  } finally {
    await rm(home, { recursive: true, force: true })
  }
})

test('unusable key files stop start-up, each named by its setting', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-auth-'))
  try {
    const rsa = await generateSigningKey('RS256', 'file-1')
    const privateJwk = { ...(await exportJWK(rsa.privateKey)), kid: 'file-1' }
    await writeFile(join(home, 'private.json'), JSON.stringify({ keys: [privateJwk] }))
    await writeFile(join(home, 'broken.json'), '{"keys": ')
    const settings = settingsWith([
      { ...jwksIssuer(''), issuer: 'https://a.example', keys: { kind: 'jwksFile', path: join(home, 'missing.json') } },
      { ...jwksIssuer(''), issuer: 'https://b.example', keys: { kind: 'jwksFile', path: join(home, 'private.json') } },
      { ...jwksIssuer(''), issuer: 'https://c.example', keys: { kind: 'jwksFile', path: join(home, 'broken.json') } },
    ])
    await assert.rejects(createAuthenticator(settings, { home, mode: 'production' }), (error: Error) => {
      assert.match(error.message, /auth\.issuers\[0\] \(https:\/\/a\.example\): .*missing\.json cannot be read/)
      assert.match(error.message, /auth\.issuers\[1\] \(https:\/\/b\.example\): .*holds a private or secret key/)
      assert.match(error.message, /auth\.issuers\[2\] \(https:\/\/c\.example\): .*broken\.json cannot be read as JSON/)
      return true
    })
  } finally {
    await rm(home, { recursive: true, force: true })
  }
})

test('refusals carry their reason to the request log (as the cause), and only the reason', async () => {
  const error = await refused(`Bearer ${await token({ aud: 'someone-else' })}`)
  assert.ok(error.cause instanceof AuthFailure)
  assert.equal(error.cause.reason, 'audience')
  assert.equal(error.detail, 'The bearer token is not valid.')
})

test('Fastify request logs can be the authenticator logger', () => {
  const app = Fastify()
  const logger: Logger = app.log
  assert.equal(typeof logger.info, 'function')
})

test('useLogger(): refusals are logged at info with their reason, never with the token', async () => {
  const lines: string[] = []
  const local = new JwtAuthenticator([{ issuer: ISSUER, audience: 'keywrap', algorithms: ['EdDSA'], key: publicKey }], { maxTokenBytes: 8192 })
  local.useLogger({
    debug: (details, message) => lines.push(`debug ${message} ${JSON.stringify(details)}`),
    info: (details, message) => lines.push(`info ${message} ${JSON.stringify(details)}`),
    warn: (details, message) => lines.push(`warn ${message} ${JSON.stringify(details)}`),
    error: (details, message) => lines.push(`error ${message} ${JSON.stringify(details)}`),
  })
  const expired = await token({ iat: now() - 7200, exp: now() - 3600 })
  await assert.rejects(local.authenticate(`Bearer ${expired}`))
  assert.equal(lines.length, 1)
  assert.match(lines[0]!, /^info bearer token refused \{"reason":"expired"/)
  for (const part of expired.split('.')) assert.ok(!lines[0]!.includes(part))
})

test('over HTTP: 401 with WWW-Authenticate for a bad token, 503 with Retry-After when the issuer keys are unreachable', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-auth-'))
  const jwks = await startJwksServer([])
  jwks.availability = 'unavailable'
  const config = loadConfig({ KEYWRAP_HOME: home })
  const deps = await composeDependencies(config)
  try {
    const authenticator = await createAuthenticator(settingsWith([jwksIssuer(jwks.url)]), { home, mode: 'production' })
    const app = await buildApp({ ...deps, authenticator })
    const rsa = await generateSigningKey('RS256', 'k')
    const unavailable = await app.inject({ method: 'GET', url: '/v1/keys', headers: { authorization: `Bearer ${await sign(rsa)}` } })
    assert.equal(unavailable.statusCode, 503)
    assert.equal(unavailable.json().code, 'issuer_unavailable')
    assert.match(String(unavailable.headers['retry-after']), /^\d+$/)
    const invalid = await app.inject({
      method: 'GET',
      url: '/v1/keys',
      headers: { authorization: `Bearer ${await sign(rsa, { iss: 'https://evil.example' })}` },
    })
    assert.equal(invalid.statusCode, 401)
    assert.equal(invalid.json().detail, "The token's issuer (iss) is not one this server trusts.")
    assert.equal(
      invalid.headers['www-authenticate'],
      'Bearer realm="keywrap", error="invalid_token", error_description="The token\'s issuer (iss) is not one this server trusts."',
    )
    await app.close()
  } finally {
    await deps.registry.close()
    await jwks.close()
    await rm(home, { recursive: true, force: true })
  }
})

async function refusedBy(subject: { authenticate(header: string): Promise<unknown> }, authorization: string): Promise<void> {
  await assert.rejects(subject.authenticate(authorization), (error: unknown) => error instanceof KeywrapError && error.code === 'unauthenticated')
}

test('cachedPrincipal(): only a token verified before and not yet expired, at once; anything else is left to authenticate()', async () => {
  let clock = Date.now()
  const cached = new JwtAuthenticator([{ issuer: ISSUER, audience: 'keywrap', algorithms: ['EdDSA'], key: publicKey }], {
    maxTokenBytes: 8192,
    now: () => clock,
  })
  const good = `Bearer ${await token({ exp: now() + 60 })}`
  assert.equal(cached.cachedPrincipal(good), undefined, 'never verified')
  const principal = await cached.authenticate(good)
  assert.deepEqual(cached.cachedPrincipal(good), principal)
  assert.equal(cached.stats().cacheHits, 1)
  // A token refused by authenticate() is never remembered.
  const forged = `Bearer ${await token({}, other.privateKey)}`
  await assert.rejects(cached.authenticate(forged))
  assert.equal(cached.cachedPrincipal(forged), undefined)
  for (const header of [undefined, '', 'Basic abc', `Bearer ${'a'.repeat(9000)}.b.c`]) assert.equal(cached.cachedPrincipal(header), undefined)
  clock += 61_000
  assert.equal(cached.cachedPrincipal(good), undefined, 'expired')
})

test('a principal keeps only the claims grants name, and only string ones', async () => {
  const keeping = new JwtAuthenticator([{ issuer: ISSUER, audience: 'keywrap', algorithms: ['EdDSA'], key: publicKey }], {
    maxTokenBytes: 8192,
    keptClaims: ['tenant', 'team', 'level', '__proto__'],
  })
  const principal = await keeping.authenticate(`Bearer ${await token({ tenant: 'acme', level: 3, email: 'a@example.com', groups: ['x'] })}`)
  assert.deepEqual(principal, { id: 'alice', issuer: ISSUER, claims: { tenant: 'acme' } })
  assert.ok(Object.isFrozen(principal.claims))
  assert.deepEqual(await keeping.authenticate(`Bearer ${await token()}`), { id: 'alice', issuer: ISSUER }, 'no claim kept: none at all')
  // The same token from the verified-token cache keeps the same claims.
  const cachedToken = await token({ tenant: 'globex' })
  await keeping.authenticate(`Bearer ${cachedToken}`)
  assert.deepEqual(keeping.cachedPrincipal(`Bearer ${cachedToken}`)?.claims, { tenant: 'globex' })
  // The default authenticator keeps none.
  assert.deepEqual(await authenticator.authenticate(`Bearer ${await token({ tenant: 'acme' })}`), { id: 'alice', issuer: ISSUER })
})
