/**
 * The attack catalogue (RFC 8725 and the usual JWT library bugs): every token here is refused as
 * `unauthenticated` with the generic detail, under the expected reason, and where the attack is one
 * the authenticator refuses before choosing a key, the issuer's JWKS endpoint is not asked either.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { exportSPKI, jwtVerify, SignJWT } from 'jose'
import { createAuthenticator } from '../../src/auth/create-authenticator.js'
import type { JwtAuthenticator } from '../../src/auth/authenticator.js'
import { Metrics } from '../../src/metrics/metrics.js'
import { generateSigningKey, startAttackerListener, startJwksServer, type AttackerListener, type JwksServer } from '../support/jwks-server.js'
import { assemble, AUDIENCE, bearer, failureCounts, ISSUER, jwksIssuer, refused, seconds, segments, settingsWith, sign, signRaw } from './fixtures.js'

const PEM_ISSUER = 'https://pem.example'
const rsa = await generateSigningKey('RS256', 'rsa-1')
const ec = await generateSigningKey('ES256', 'ec-1')
const ed = await generateSigningKey('EdDSA', 'ed-1')
const pemKey = await generateSigningKey('RS256', 'pem')
const mallory = await generateSigningKey('RS256', 'mallory')
const malloryEd = await generateSigningKey('EdDSA', 'mallory-ed')
const rsaPem = await exportSPKI(rsa.publicKey)

let jwks: JwksServer
let attacker: AttackerListener
let metrics: Metrics
/** cooldownSeconds 0: any lookup of an unknown kid fetches the JWKS, so "no fetch" means "no lookup". */
let eager: JwtAuthenticator
/** Usual timings: the set fetched at start-up stays fresh for the whole file. */
let usual: JwtAuthenticator

before(async () => {
  jwks = await startJwksServer([rsa, ec, ed])
  attacker = await startAttackerListener([mallory])
  metrics = new Metrics()
  const issuers = [
    jwksIssuer(jwks.url),
    {
      ...jwksIssuer(''),
      issuer: PEM_ISSUER,
      keys: { kind: 'publicKeyPem' as const, pem: await exportSPKI(pemKey.publicKey) },
      algorithms: ['RS256' as const],
    },
  ]
  const deps = { home: '/nonexistent', mode: 'production' as const, metrics }
  eager = await createAuthenticator(
    settingsWith(issuers, { jwks: { timeoutSeconds: 1, cooldownSeconds: 0, cacheMaxAgeSeconds: 600, staleIfErrorSeconds: 0 } }),
    deps,
  )
  usual = await createAuthenticator(settingsWith(issuers), { ...deps, metrics: new Metrics() })
  await eager.warm()
  await usual.warm()
})

after(async () => {
  await jwks.close()
  await attacker.close()
})

/** What the caller is told for each reason: an expiry, a clock skew, an untrusted issuer; else only "not valid". */
const TOLD: Readonly<Record<string, string>> = {
  unknown_issuer: "The token's issuer (iss) is not one this server trusts.",
  expired: 'The bearer token has expired; get a new one.',
  not_yet_valid: "The bearer token is not valid yet; check the issuer's and this server's clocks.",
  issued_in_future: "The bearer token is not valid yet; check the issuer's and this server's clocks.",
}
const detailFor = (reason: string) => TOLD[reason] ?? 'The bearer token is not valid.'

/** Refused by `eager` with the detail of `reason`, with no JWKS fetch and nothing sent to the attacker. */
async function refusedBeforeKeyLookup(authorization: string, reason: string): Promise<void> {
  const fetches = jwks.fetches
  const before = (await failureCounts(metrics))[reason] ?? 0
  const error = await refused(eager, authorization)
  assert.equal((await failureCounts(metrics))[reason], before + 1, `reason ${reason}; counts: ${JSON.stringify(await failureCounts(metrics))}`)
  if (!['missing', 'not_bearer', 'too_large'].includes(reason)) assert.equal(error.detail, detailFor(reason))
  assert.equal(jwks.fetches, fetches, 'the JWKS endpoint was asked')
  assert.equal(attacker.requests.length, 0, 'the attacker listener was contacted')
}

async function refusedFor(authorization: string, reason: string): Promise<void> {
  const before = (await failureCounts(metrics))[reason] ?? 0
  const error = await refused(eager, authorization)
  assert.equal(error.detail, detailFor(reason))
  assert.equal((await failureCounts(metrics))[reason], before + 1, `reason ${reason}; counts: ${JSON.stringify(await failureCounts(metrics))}`)
}

test('baseline: RSA, EC and Ed25519 tokens from the JWKS and an RSA token from the PEM issuer are accepted', async () => {
  for (const key of [rsa, ec, ed]) assert.deepEqual(await usual.authenticate(bearer(await sign(key))), { id: 'alice', issuer: ISSUER })
  assert.deepEqual(await usual.authenticate(bearer(await sign(pemKey, { iss: PEM_ISSUER }))), { id: 'alice', issuer: PEM_ISSUER })
  assert.equal(jwks.fetches, 2, 'one fetch per authenticator, at warm()')
})

test('alg none without a signature segment', async () => {
  const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'admin', iat: seconds(), exp: seconds() + 600 }
  await refusedBeforeKeyLookup(bearer(assemble({ alg: 'none', typ: 'JWT' }, claims)), 'malformed')
  await refusedBeforeKeyLookup(bearer(assemble({ alg: 'none', typ: 'JWT' }, claims, '.')), 'malformed')
})

for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
  test(`alg ${alg} with a signature segment`, async () => {
    const [, claims, signature] = segments(await sign(rsa))
    const header = Buffer.from(JSON.stringify({ alg, kid: 'rsa-1' })).toString('base64url')
    await refusedBeforeKeyLookup(bearer(`${header}.${claims}.${signature}`), 'algorithm')
  })
}

test('HS256 signed with the issuer public key as the HMAC secret (PEM and JWK forms)', async () => {
  const secrets = [rsaPem, `${rsaPem.trim()}`, JSON.stringify(rsa.jwk), await exportSPKI(pemKey.publicKey)]
  for (const [index, secret] of secrets.entries()) {
    const iss = index === 3 ? PEM_ISSUER : ISSUER
    const token = await new SignJWT({ iss, aud: AUDIENCE, sub: 'admin', iat: seconds(), exp: seconds() + 600 })
      .setProtectedHeader({ alg: 'HS256', kid: index === 3 ? undefined : 'rsa-1' } as { alg: string })
      .sign(new TextEncoder().encode(secret))
    await refusedBeforeKeyLookup(bearer(token), 'algorithm')
  }
})

test('an algorithm another issuer may use, but not this one (ES256 to the RS256-only PEM issuer)', async () => {
  await refusedBeforeKeyLookup(bearer(await sign(ec, { iss: PEM_ISSUER })), 'algorithm')
})

test('jku and x5u pointing at the attacker: refused, and the attacker hears nothing', async () => {
  const token = (header: Record<string, string>) => sign(mallory, { sub: 'admin' }, header)
  await refusedBeforeKeyLookup(bearer(await token({ jku: `${attacker.url}/jwks.json` })), 'embedded_key')
  await refusedBeforeKeyLookup(bearer(await token({ x5u: `${attacker.url}/cert.pem` })), 'embedded_key')
  // Even with the trusted kid: the header alone is reason enough.
  await refusedBeforeKeyLookup(bearer(await sign(mallory, { sub: 'admin' }, { kid: 'rsa-1', jku: `${attacker.url}/jwks.json` })), 'embedded_key')
})

test('an embedded jwk (the attacker signing with the key the token carries)', async () => {
  const { kid: _kid, ...jwk } = malloryEd.jwk
  await refusedBeforeKeyLookup(bearer(await sign(malloryEd, { sub: 'admin' }, { jwk, kid: undefined })), 'embedded_key')
})

test('an x5c certificate chain', async () => {
  const x5c = [Buffer.from('not really a certificate, and it does not matter').toString('base64')]
  await refusedBeforeKeyLookup(bearer(await sign(mallory, { sub: 'admin' }, { x5c })), 'embedded_key')
})

test('an issuer that is not configured, or spelled differently', async () => {
  await refusedBeforeKeyLookup(bearer(await sign(mallory, { iss: 'https://evil.example' })), 'unknown_issuer')
  await refusedBeforeKeyLookup(bearer(await sign(rsa, { iss: `${ISSUER}/` })), 'unknown_issuer')
  await refusedBeforeKeyLookup(bearer(await sign(rsa, { iss: undefined })), 'unknown_issuer')
  await refusedBeforeKeyLookup(bearer(await sign(rsa, { iss: [ISSUER] })), 'unknown_issuer')
})

test('2 and 4 segments, empty segments, and characters outside base64url', async () => {
  const [header, claims, signature] = segments(await sign(rsa))
  for (const token of [
    `${header}.${claims}`,
    `${header}.${claims}.${signature}.${signature}`,
    `${header}..${signature}`,
    `.${claims}.${signature}`,
    `${header}.${claims}.${signature}=`,
    `${header}.${claims}+/.${signature}`,
  ]) {
    await refusedBeforeKeyLookup(bearer(token), 'malformed')
  }
})

test('headers and claims that are not JSON objects', async () => {
  const [, claims, signature] = segments(await sign(rsa))
  const [header] = segments(await sign(rsa))
  await refusedBeforeKeyLookup(bearer(`${Buffer.from('{alg: RS256}').toString('base64url')}.${claims}.${signature}`), 'malformed')
  await refusedBeforeKeyLookup(bearer(`${Buffer.from('["RS256"]').toString('base64url')}.${claims}.${signature}`), 'malformed')
  await refusedBeforeKeyLookup(bearer(`${Buffer.from('null').toString('base64url')}.${claims}.${signature}`), 'malformed')
  await refusedBeforeKeyLookup(bearer(`${header}.${Buffer.from('"alice"').toString('base64url')}.${signature}`), 'malformed')
  await refusedBeforeKeyLookup(bearer(`${header}.${Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64url')}.${signature}`), 'malformed')
})

test('an oversized token is refused on its length alone', async () => {
  const token = await sign(rsa, { padding: 'x'.repeat(9000) })
  await refusedBeforeKeyLookup(bearer(token), 'too_large')
  // Not even a JWT: the length is checked before anything is decoded.
  await refusedBeforeKeyLookup(`Bearer ${'A'.repeat(8200)}`, 'too_large')
})

test('missing and non-bearer Authorization headers', async () => {
  await refusedBeforeKeyLookup('', 'missing')
  await refusedBeforeKeyLookup('Basic YWxpY2U6cHc=', 'not_bearer')
  await refusedBeforeKeyLookup(`Token ${await sign(rsa)}`, 'not_bearer')
  await refusedBeforeKeyLookup(`Bearer  ${await sign(rsa)}`, 'malformed')
  await refusedBeforeKeyLookup(`Bearer ${await sign(rsa)} `, 'malformed')
})

test('kid values that are not strings, or absurdly long', async () => {
  await refusedBeforeKeyLookup(bearer(await sign(rsa, {}, { kid: 1 })), 'malformed')
  await refusedBeforeKeyLookup(bearer(await sign(rsa, {}, { kid: { $ne: null } })), 'malformed')
  await refusedBeforeKeyLookup(bearer(await sign(rsa, {}, { kid: 'k'.repeat(1025) })), 'malformed')
})

test('duplicate JSON members: jose keeps the last one, keywrap refuses the token', async () => {
  const now = seconds()
  const base = `"iss":"${ISSUER}","aud":"${AUDIENCE}","sub":"alice","iat":${now},"exp":${now + 600}`
  const header = '{"alg":"EdDSA","kid":"ed-1"}'
  const withDuplicateSub = await signRaw(ed, header, `{${base},"sub":"admin"}`)
  // The reason to refuse: jose (like JSON.parse) silently takes the later "sub".
  assert.equal((await jwtVerify(withDuplicateSub, ed.publicKey)).payload.sub, 'admin')
  await refusedBeforeKeyLookup(bearer(withDuplicateSub), 'duplicate_member')
  await refusedBeforeKeyLookup(bearer(await signRaw(ed, header, `{${base},"\\u0073ub":"admin"}`)), 'duplicate_member')
  await refusedBeforeKeyLookup(bearer(await signRaw(ed, header, `{${base},"groups":{"admin":false,"admin":true}}`)), 'duplicate_member')
  await refusedBeforeKeyLookup(bearer(await signRaw(ed, '{"alg":"EdDSA","kid":"ed-1","alg":"EdDSA"}', `{${base}}`)), 'duplicate_member')
  // The same names in different objects are not duplicates.
  assert.ok(await eager.authenticate(bearer(await signRaw(ed, header, `{${base},"a":{"sub":1},"b":[{"sub":2},{"sub":3}]}`))))
})

test('a key the issuer never had, presented under the issuer kid', async () => {
  const fetches = jwks.fetches
  await refusedFor(bearer(await sign({ ...mallory, kid: 'rsa-1' }, { sub: 'admin' })), 'signature')
  assert.equal(jwks.fetches, fetches)
})

test('kid traversal and injection strings are only ever compared, never used', async () => {
  for (const kid of [
    '../../etc/passwd',
    '/dev/random',
    "' OR 1=1 --",
    '"; DROP TABLE keys; --',
    '\u0000rsa-1',
    'rsa-1\n',
    'k'.repeat(1024),
    '${jndi:ldap://127.0.0.1/a}',
  ]) {
    const fetches = jwks.fetches
    const error = await refused(usual, bearer(await sign(mallory, {}, { kid })))
    assert.equal(error.detail, 'The bearer token is not valid.')
    assert.equal(jwks.fetches, fetches, `kid ${JSON.stringify(kid).slice(0, 40)} caused a fetch within the cooldown`)
  }
})

test('critical header parameters keywrap does not understand', async () => {
  const now = seconds()
  const claims = `{"iss":"${ISSUER}","aud":"${AUDIENCE}","sub":"alice","iat":${now},"exp":${now + 600}}`
  const withHeader = async (header: object) => bearer(await signRaw(ed, JSON.stringify({ alg: 'EdDSA', kid: 'ed-1', ...header }), claims))
  // Sanity: the same token without crit is accepted.
  assert.ok(await eager.authenticate(await withHeader({})))
  await refusedFor(await withHeader({ crit: ['urn:example:must-understand'], 'urn:example:must-understand': true }), 'unsupported')
  await refusedFor(await withHeader({ crit: ['exp'], exp: now + 600 }), 'unsupported')
  await refusedFor(await withHeader({ crit: [] }), 'malformed')
  await refusedFor(await withHeader({ crit: 'exp' }), 'malformed')
  await refusedFor(await withHeader({ crit: ['b64'], b64: false }), 'malformed')
})

const now = seconds()
const claimAttacks: [string, Record<string, unknown>, string][] = [
  ['expired', { iat: now - 7200, exp: now - 3600 }, 'expired'],
  ['expired beyond the 30 s tolerance', { iat: now - 600, exp: now - 31 }, 'expired'],
  ['not yet valid (nbf in the future)', { nbf: now + 3600 }, 'not_yet_valid'],
  ['issued in the future', { iat: now + 3600, exp: now + 7200 }, 'issued_in_future'],
  ['without exp', { exp: undefined }, 'missing_claim'],
  ['without iat', { iat: undefined }, 'missing_claim'],
  ['without sub', { sub: undefined }, 'missing_claim'],
  ['with exp in milliseconds', { exp: Date.now() + 600_000 }, 'lifetime'],
  ['living longer than 24 h', { exp: now + 25 * 3600 }, 'lifetime'],
  ['issued 25 h ago, still unexpired', { iat: now - 25 * 3600, exp: now + 60 }, 'expired'],
  ['expiring before it was issued', { iat: now, exp: now - 1 }, 'lifetime'],
  ['with exp as a string', { exp: String(now + 600) }, 'invalid_claim'],
  ['with a numeric sub', { sub: 42 }, 'invalid_claim'],
  ['with an empty sub', { sub: '' }, 'invalid_claim'],
  ['for another audience', { aud: 'someone-else' }, 'audience'],
  ['for several audiences, none of them keywrap', { aud: ['a', 'b'] }, 'audience'],
  ['without aud', { aud: undefined }, 'missing_claim'],
]

for (const [name, claims, reason] of claimAttacks) {
  test(`a token ${name}`, async () => {
    await refusedFor(bearer(await sign(ed, claims)), reason)
  })
}

test('a signature spliced onto another payload', async () => {
  const [header, claims] = segments(await sign(rsa, { sub: 'admin' }))
  const [, , signature] = segments(await sign(rsa, { sub: 'alice' }))
  await refusedFor(bearer(`${header}.${claims}.${signature}`), 'signature')
})

test('a token of one issuer signed with another issuer key (PEM issuer, JWKS key)', async () => {
  await refusedFor(bearer(await sign({ ...rsa, kid: undefined }, { iss: PEM_ISSUER })), 'signature')
})

test('typ: absent, JWT and at+jwt are accepted by default (any case, application/ prefix optional); other types are refused before any key lookup', async () => {
  for (const typ of [undefined, 'JWT', 'jwt', 'at+jwt', 'application/at+JWT', 'application/jwt']) {
    assert.deepEqual(await usual.authenticate(bearer(await sign(rsa, {}, { typ }))), { id: 'alice', issuer: ISSUER }, `typ ${typ}`)
  }
  // Tokens made for other purposes (RFC 8725 §3.11): a DPoP proof, a security event, a logout token, a JWE-ish type.
  for (const typ of ['dpop+jwt', 'secevent+jwt', 'logout+jwt', 'JOSE', 'JOSE+JSON', '']) {
    await refusedBeforeKeyLookup(bearer(await sign(mallory, { sub: 'admin' }, { typ })), 'token_type')
  }
  const [, claims, signature] = segments(await sign(rsa))
  for (const typ of [1, true, ['JWT'], { v: 'JWT' }]) {
    const header = Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'rsa-1', typ })).toString('base64url')
    await refusedBeforeKeyLookup(bearer(`${header}.${claims}.${signature}`), 'token_type')
  }
})

test('typ: an issuer configured for at+jwt only refuses ID tokens (typ JWT or absent)', async () => {
  const strict = await createAuthenticator(settingsWith([jwksIssuer(jwks.url, { acceptedTypes: ['at+jwt'] })]), {
    home: '/nonexistent',
    mode: 'production',
    metrics: new Metrics(),
  })
  await strict.warm()
  assert.deepEqual(await strict.authenticate(bearer(await sign(ec, {}, { typ: 'at+jwt' }))), { id: 'alice', issuer: ISSUER })
  for (const typ of [undefined, 'JWT']) await refused(strict, bearer(await sign(ec, {}, { typ })))
})

test('a signature that is not base64url of the right length', async () => {
  const [header, claims] = segments(await sign(ed))
  await refusedFor(bearer(`${header}.${claims}.AAAA`), 'signature')
})

test('every refusal was counted under a bounded set of reasons, never the token', async () => {
  const counts = await failureCounts(metrics)
  for (const reason of Object.keys(counts)) assert.match(reason, /^[a-z_]+$/)
  assert.ok(Object.values(counts).reduce((sum, count) => sum + count, 0) >= 60)
})
