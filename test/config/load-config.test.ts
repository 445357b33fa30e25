import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../../src/config/load-config.js'

async function configFile(content: string, name = 'config.json'): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'keywrap-config-')), name)
  await writeFile(path, content)
  return path
}

function violationsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env)
  } catch (error) {
    assert.ok(error instanceof ConfigError)
    return error.violations
  }
  assert.fail('expected a ConfigError')
}

test('defaults: development, local default key, development issuer, no policy', () => {
  const config = loadConfig({})
  assert.equal(config.mode, 'development')
  assert.equal(config.port, 8080)
  assert.equal(config.host, '127.0.0.1')
  assert.deepEqual(config.keys, { default: 'local://default' })
  assert.equal(config.auth.devIssuer, true)
  assert.equal(config.policy, undefined)
  assert.equal(config.keyRefreshSeconds, 60)
  assert.deepEqual(config.cache, { ttlSeconds: 600, maxEntries: 100_000 })
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.keys))
})

test('production defaults: listen on all interfaces, no development issuer, no implicit default key', async () => {
  const path = await configFile(
    JSON.stringify({
      keys: { pay: 'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k' },
      auth: { issuers: [{ preset: 'google', audience: 'https://keywrap.example' }] },
      policy: { grants: [{ principals: ['svc'], keys: ['pay'], operations: ['unwrap'] }] },
    }),
  )
  const config = loadConfig({
    NODE_ENV: 'production',
    KEYWRAP_CONFIG: path,
    GOOGLE_CLOUD_PROJECT: 'p',
    KEYWRAP_AUDIT_FINGERPRINT_KEY: Buffer.alloc(32, 9).toString('base64'),
    KEYWRAP_AUDIT_SIGNING_KEY: 'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/audit/cryptoKeyVersions/1',
  })
  assert.equal(config.host, '0.0.0.0')
  assert.equal(config.audit.signingKey, 'projects/p/locations/l/keyRings/r/cryptoKeys/audit/cryptoKeyVersions/1')
  assert.equal(config.audit.checkpointSeconds, 60)
  assert.equal(config.auth.devIssuer, false)
  assert.deepEqual(config.keys, { pay: 'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k' })
  assert.equal(config.http.trustProxy, true)
})

test('every violation is reported at once, each naming its setting', async () => {
  const path = await configFile(
    JSON.stringify({
      keys: { 'Bad Alias': 'local://x', pay: 'vault://nope' },
      auth: { devIssuer: 'yes', extra: 1 },
      policy: { grants: [{ principals: [], keys: ['*'], operations: ['unwrap', 'fly'] }] },
      cache: {},
    }),
  )
  const violations = violationsOf({
    PORT: 'eighty',
    KEYWRAP_KEY_REFRESH_SECONDS: '0',
    KEYWRAP_LOG_LEVEL: 'loud',
    KEYWRAP_TRUST_PROXY: 'maybe',
    KEYWRAP_CONFIG: path,
  })
  const expected = [
    'PORT',
    'KEYWRAP_KEY_REFRESH_SECONDS',
    'KEYWRAP_LOG_LEVEL',
    'KEYWRAP_TRUST_PROXY',
    'keys.Bad Alias',
    'keys.pay',
    'auth.devIssuer',
    'auth.extra',
    'policy.grants[0].principals',
    '"fly"',
    'unknown section "cache"',
  ]
  for (const fragment of expected)
    assert.ok(
      violations.some((v) => v.includes(fragment)),
      `no violation mentions ${fragment}:\n${violations.join('\n')}`,
    )
  assert.equal(violations.length, expected.length)
})

test('the message lists the violations for the operator', () => {
  assert.throws(() => loadConfig({ PORT: '99999' }), /keywrap cannot start; fix these settings:\n {2}- PORT="99999" must be a whole number from 0 to 65535/)
})

test('a missing or malformed config file is a violation, not a crash', async () => {
  assert.match(violationsOf({ KEYWRAP_CONFIG: '/nonexistent/keywrap.json' })[0]!, /KEYWRAP_CONFIG=\/nonexistent\/keywrap.json cannot be read \(ENOENT\)/)
  assert.match(violationsOf({ KEYWRAP_CONFIG: await configFile('{"keys": ') })[0]!, /is not valid JSON/)
  assert.match(violationsOf({ KEYWRAP_CONFIG: await configFile('[1]') })[0]!, /must hold an object/)
})

test('YAML config files are read too', async () => {
  const path = await configFile(
    'keys:\n  pay: local://payments\npolicy:\n  grants:\n    - principals: [alice, "svc-*"]\n      keys: ["pay*"]\n      operations: [unwrap]\n',
    'keywrap.yaml',
  )
  const config = loadConfig({ KEYWRAP_CONFIG: path })
  assert.deepEqual(config.keys, { pay: 'local://payments', default: 'local://default' })
  assert.deepEqual(config.policy, { grants: [{ principals: ['alice', 'svc-*'], keys: ['pay*'], operations: ['unwrap'] }] })
})

test('production refuses development parts, each with what to change', async () => {
  assert.deepEqual(violationsOf({ NODE_ENV: 'production' }), [
    'keys must name at least one alias (KEYWRAP_CONFIG is required in production)',
    'auth.issuers: production needs at least one token issuer (e.g. {"preset": "google", "audience": "https://SERVICE_URL"})',
    'policy.grants: production needs at least one grant (deny by default would refuse every call)',
    'KEYWRAP_AUDIT_FINGERPRINT_KEY: set a base64 secret of 32 bytes or more (from Secret Manager), the same on every instance, so audit fingerprints correlate across the fleet',
    'KEYWRAP_AUDIT_SIGNING_KEY: set the Cloud KMS key version that signs audit checkpoints (gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N, purpose asymmetric-signing, EC_SIGN_P256_SHA256); production does not sign with a key kept on disk',
    'GOOGLE_CLOUD_PROJECT: set the Google Cloud project id (Cloud Run does not set it, and keywrap never probes for it)',
  ])
  const path = await configFile(JSON.stringify({ keys: { default: 'local://default' }, auth: { devIssuer: true }, policy: { grants: [] } }))
  const violations = violationsOf({ NODE_ENV: 'production', KEYWRAP_CONFIG: path, GOOGLE_CLOUD_PROJECT: 'p', KEYWRAP_AUDIT_FINGERPRINT_KEY: 'c2hvcnQ=' })
  assert.deepEqual(violations, [
    violations.find((v) => v.startsWith('KEYWRAP_AUDIT_FINGERPRINT_KEY ')),
    'keys.default: local://default is a development key; in production map "default" to a gcp-kms:// key',
    'auth.devIssuer: the development issuer cannot be used in production; remove it or set it to false',
    'auth.issuers: production needs at least one token issuer (e.g. {"preset": "google", "audience": "https://SERVICE_URL"})',
    'policy.grants: production needs at least one grant (deny by default would refuse every call)',
    'KEYWRAP_AUDIT_FINGERPRINT_KEY: set a base64 secret of 32 bytes or more (from Secret Manager), the same on every instance, so audit fingerprints correlate across the fleet',
    'KEYWRAP_AUDIT_SIGNING_KEY: set the Cloud KMS key version that signs audit checkpoints (gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N, purpose asymmetric-signing, EC_SIGN_P256_SHA256); production does not sign with a key kept on disk',
  ])
  assert.match(violations[0]!, /^KEYWRAP_AUDIT_FINGERPRINT_KEY .*32/)
})

test('KEYWRAP_AUDIT_SIGNING_KEY names a Cloud KMS key version; KEYWRAP_AUDIT_CHECKPOINT_SECONDS is 1 to 86400', () => {
  assert.equal(loadConfig({}).audit.signingKey, undefined)
  assert.deepEqual(
    violationsOf({ KEYWRAP_AUDIT_SIGNING_KEY: 'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/audit', KEYWRAP_AUDIT_CHECKPOINT_SECONDS: '0' }),
    [
      'KEYWRAP_AUDIT_SIGNING_KEY="gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/audit" must be a Cloud KMS key version: gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N',
      'KEYWRAP_AUDIT_CHECKPOINT_SECONDS="0" must be a whole number from 1 to 86400',
    ],
  )
  assert.equal(loadConfig({ KEYWRAP_AUDIT_CHECKPOINT_SECONDS: '5' }).audit.checkpointSeconds, 5)
})

test('with several token issuers every grant names its issuer', async () => {
  const path = await configFile(
    JSON.stringify({
      auth: { issuers: [{ preset: 'google', audience: 'https://keywrap.example' }] },
      policy: {
        grants: [
          { principals: ['orders@p.iam.gserviceaccount.com'], keys: ['default'], operations: ['unwrap'] },
          { principals: ['ops'], keys: ['*'], operations: ['keys.read'], issuer: 'urn:keywrap:dev' },
        ],
      },
    }),
  )
  const violations = violationsOf({ KEYWRAP_CONFIG: path })
  assert.equal(violations.length, 1)
  assert.match(violations[0]!, /^policy\.grants\[0\]\.issuer: 2 token issuers are configured/)
})

test('a grant naming an issuer that is not configured would match nobody: refused', async () => {
  const path = await configFile(
    JSON.stringify({
      auth: { issuers: [{ preset: 'google', audience: 'https://keywrap.example' }] },
      policy: { grants: [{ principals: ['a@p.iam.gserviceaccount.com'], keys: ['default'], operations: ['unwrap'], issuer: 'accounts.google.com' }] },
    }),
  )
  const violations = violationsOf({ KEYWRAP_CONFIG: path })
  assert.equal(violations.length, 1)
  assert.match(
    violations[0]!,
    /^policy\.grants\[0\]\.issuer: "accounts\.google\.com" is not a configured issuer, .*https:\/\/accounts\.google\.com, urn:keywrap:dev/,
  )
})

test('NODE_ENV: production, development and test only; test runs as development, anything else is refused', () => {
  assert.equal(loadConfig({ NODE_ENV: 'test' }).mode, 'development')
  assert.equal(loadConfig({ NODE_ENV: 'development' }).mode, 'development')
  for (const value of ['staging', 'prod', 'Production']) {
    assert.deepEqual(violationsOf({ NODE_ENV: value }), [
      `NODE_ENV="${value}" must be one of production, development, test (test runs as development); use production for a deployed service`,
    ])
  }
})

test('grant conditions: context patterns and claims, requireReason, read as given', async () => {
  const grant = {
    principals: ['svc-*'],
    keys: ['payments'],
    operations: ['unwrap'],
    context: { tenant: { claim: 'tenant' }, env: 'prod-*' },
    requireReason: true,
  }
  const path = await configFile(JSON.stringify({ keys: { payments: 'local://payments' }, policy: { grants: [grant] } }))
  assert.deepEqual(loadConfig({ KEYWRAP_CONFIG: path }).policy, { grants: [grant] })
})

test('malformed grant conditions are violations, each named', async () => {
  const grants = [
    { principals: ['a'], keys: ['k'], operations: ['unwrap'], context: { tenant: '' } },
    { principals: ['a'], keys: ['k'], operations: ['unwrap'], context: { tenant: { claim: '' } } },
    { principals: ['a'], keys: ['k'], operations: ['unwrap'], context: { tenant: { claim: 'tenant', default: 'acme' } } },
    { principals: ['a'], keys: ['k'], operations: ['unwrap'], context: { tenant: { value: 'acme' } } },
    { principals: ['a'], keys: ['k'], operations: ['unwrap'], context: { tenant: 7 } },
    { principals: ['a'], keys: ['k'], operations: ['unwrap'], context: ['tenant'] },
    { principals: ['a'], keys: ['k'], operations: ['unwrap'], context: {} },
    { principals: ['a'], keys: ['k'], operations: ['unwrap'], requireReason: 'yes' },
    { principals: ['a'], keys: ['k'], operations: ['unwrap'], condition: {} },
  ]
  const violations = violationsOf({ KEYWRAP_CONFIG: await configFile(JSON.stringify({ policy: { grants } })) })
  const expected = [
    /^policy\.grants\[0\]\.context\.tenant is an empty pattern \(use "\*" for any value\)$/,
    /^policy\.grants\[1\]\.context\.tenant must be a non-empty pattern or \{"claim": "NAME"\}/,
    /^policy\.grants\[2\]\.context\.tenant must be a non-empty pattern or \{"claim": "NAME"\}/,
    /^policy\.grants\[3\]\.context\.tenant must be a non-empty pattern or \{"claim": "NAME"\}/,
    /^policy\.grants\[4\]\.context\.tenant must be a non-empty pattern or \{"claim": "NAME"\}/,
    /^policy\.grants\[5\]\.context must be an object mapping at least one context key/,
    /^policy\.grants\[6\]\.context must be an object mapping at least one context key/,
    /^policy\.grants\[7\]\.requireReason must be true or false$/,
    /^policy\.grants\[8\]\.condition is not a grant field \(known: principals, keys, operations, issuer, context, requireReason\)$/,
  ]
  assert.equal(violations.length, expected.length, violations.join('\n'))
  expected.forEach((pattern, index) => assert.match(violations[index]!, pattern))
})

test('KEYWRAP_AUDIT_SINK: parsed once, here; a value that names no sink, or cloud-logging without a project, is a violation', () => {
  assert.deepEqual(loadConfig({}).audit.sink, { kind: 'stdout' })
  assert.deepEqual(loadConfig({ KEYWRAP_AUDIT_SINK: 'file:/var/log/keywrap/audit.jsonl' }).audit.sink, { kind: 'file', path: '/var/log/keywrap/audit.jsonl' })
  assert.deepEqual(loadConfig({ KEYWRAP_AUDIT_SINK: 'cloud-logging', GOOGLE_CLOUD_PROJECT: 'p' }).audit.sink, { kind: 'cloud-logging' })
  assert.ok(violationsOf({ KEYWRAP_AUDIT_SINK: 'syslog' }).includes('KEYWRAP_AUDIT_SINK="syslog" must be stdout, file:PATH or cloud-logging'))
  assert.ok(
    violationsOf({ KEYWRAP_AUDIT_SINK: 'cloud-logging' }).some((violation) =>
      violation.startsWith('KEYWRAP_AUDIT_SINK=cloud-logging needs GOOGLE_CLOUD_PROJECT'),
    ),
  )
})
