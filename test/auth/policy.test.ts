import { test } from 'node:test'
import assert from 'node:assert/strict'
import { developmentPolicy, GrantPolicy } from '../../src/auth/policy.js'
import { PERMISSIONS, type Permission } from '../../src/operations.js'

const policy = new GrantPolicy([
  { principals: ['producer'], keys: ['pay-*'], operations: ['generateDataKey', 'wrap'] },
  { principals: ['consumer', 'svc-*'], keys: ['pay-*', 'default'], operations: ['unwrap'] },
  { principals: ['admin'], keys: ['*'], operations: ['*'], issuer: 'https://issuer.example' },
])

const cases: [string, string, string, Permission, boolean][] = [
  ['producer', 'iss', 'pay-eu', 'generateDataKey', true],
  ['producer', 'iss', 'pay-eu', 'wrap', true],
  ['producer', 'iss', 'pay-eu', 'unwrap', false],
  ['producer', 'iss', 'default', 'generateDataKey', false],
  ['consumer', 'iss', 'pay-eu', 'unwrap', true],
  ['consumer', 'iss', 'pay-eu', 'generateDataKey', false],
  ['svc-batch', 'iss', 'default', 'unwrap', true],
  ['svc-batch', 'iss', 'other', 'unwrap', false],
  ['xsvc-batch', 'iss', 'default', 'unwrap', false],
  ['admin', 'https://issuer.example', 'anything', 'cache.purge', true],
  ['admin', 'https://other.example', 'anything', 'unwrap', false],
  ['nobody', 'iss', 'pay-eu', 'unwrap', false],
  ['pay-.*', 'iss', 'pay-eu', 'unwrap', false],
]

for (const [id, issuer, alias, operation, allowed] of cases) {
  test(`${id} (${issuer}) ${allowed ? 'may' : 'may not'} ${operation} ${alias}`, () => {
    assert.equal(policy.allows({ id, issuer }, alias, operation), allowed)
  })
}

test('patterns are literal apart from *', () => {
  const dotted = new GrantPolicy([{ principals: ['a.b'], keys: ['k'], operations: ['unwrap'] }])
  assert.equal(dotted.allows({ id: 'a.b', issuer: 'i' }, 'k', 'unwrap'), true)
  assert.equal(dotted.allows({ id: 'axb', issuer: 'i' }, 'k', 'unwrap'), false)
})

test('deny by default: no grants allow nothing', () => {
  assert.equal(new GrantPolicy([]).allows({ id: 'dev', issuer: 'x' }, 'default', 'unwrap'), false)
})

test('allowsAny lists keys with any grant', () => {
  assert.equal(policy.allowsAny({ id: 'producer', issuer: 'iss' }, 'pay-eu'), true)
  assert.equal(policy.allowsAny({ id: 'producer', issuer: 'iss' }, 'default'), false)
})

test('the development policy covers only the development issuer', () => {
  const dev = developmentPolicy('urn:keywrap:dev')
  assert.equal(dev.allows({ id: 'alice', issuer: 'urn:keywrap:dev' }, 'default', 'rewrap'), true)
  assert.equal(dev.allows({ id: 'alice', issuer: 'https://accounts.google.com' }, 'default', 'rewrap'), false)
})

// Producer-only and consumer-only grants, and operations tied to no key.

const split = new GrantPolicy([
  { principals: ['orders-api'], keys: ['orders'], operations: ['generateDataKey', 'wrap'], issuer: 'https://accounts.google.com' },
  { principals: ['orders-reader'], keys: ['orders'], operations: ['unwrap'], issuer: 'https://accounts.google.com' },
  { principals: ['rotator'], keys: ['orders', 'orders-*'], operations: ['rewrap', 'keys.read'] },
  { principals: ['ops'], keys: ['*'], operations: ['cache.purge', 'keys.read'] },
  { principals: ['prometheus'], keys: ['nothing-matches-this'], operations: ['metrics.read'] },
  { principals: ['sealer'], keys: ['orders'], operations: ['generateDataKeyWithoutPlaintext'] },
])
const GOOGLE = 'https://accounts.google.com'
const every = Object.keys(PERMISSIONS) as Permission[]
const expectations: [string, string, string, Permission[]][] = [
  ['orders-api', GOOGLE, 'orders', ['generateDataKey', 'generateDataKeyWithoutPlaintext', 'wrap']],
  ['sealer', 'any', 'orders', ['generateDataKeyWithoutPlaintext']],
  ['sealer', 'any', 'payments', []],
  ['orders-api', 'urn:keywrap:dev', 'orders', []],
  ['orders-api', GOOGLE, 'orders-eu', []],
  ['orders-reader', GOOGLE, 'orders', ['unwrap']],
  ['orders-reader', GOOGLE, 'payments', []],
  ['rotator', 'any', 'orders-eu', ['rewrap', 'keys.read']],
  ['ops', 'any', 'payments', ['keys.read', 'cache.purge']],
  ['prometheus', 'any', 'orders', []],
]

for (const [id, issuer, alias, allowed] of expectations) {
  test(`${id} (${issuer}) on ${alias}: exactly ${allowed.join(', ') || 'nothing'}`, () => {
    assert.deepEqual(every.filter((operation) => split.allows({ id, issuer }, alias, operation)), allowed)
  })
}

test('allowsUnscoped: metrics.read from any grant listing it, whatever its keys', () => {
  assert.equal(split.allowsUnscoped({ id: 'prometheus', issuer: 'x' }, 'metrics.read'), true)
  assert.equal(split.allowsUnscoped({ id: 'ops', issuer: 'x' }, 'metrics.read'), false)
  assert.equal(split.allowsUnscoped({ id: 'orders-api', issuer: GOOGLE }, 'metrics.read'), false)
  assert.equal(developmentPolicy('urn:keywrap:dev').allowsUnscoped({ id: 'a', issuer: 'urn:keywrap:dev' }, 'metrics.read'), true)
  assert.equal(developmentPolicy('urn:keywrap:dev').allowsUnscoped({ id: 'a', issuer: GOOGLE }, 'metrics.read'), false)
  assert.equal(new GrantPolicy([]).allowsUnscoped({ id: 'a', issuer: 'b' }, 'metrics.read'), false)
  // The issuer of a grant still applies.
  const pinned = new GrantPolicy([{ principals: ['prometheus'], keys: ['*'], operations: ['metrics.read'], issuer: GOOGLE }])
  assert.equal(pinned.allowsUnscoped({ id: 'prometheus', issuer: GOOGLE }, 'metrics.read'), true)
  assert.equal(pinned.allowsUnscoped({ id: 'prometheus', issuer: 'urn:keywrap:dev' }, 'metrics.read'), false)
})

test('a grant of metrics.read alone lists no keys, even with keys: ["*"]', () => {
  const metricsOnly = new GrantPolicy([{ principals: ['prometheus'], keys: ['*'], operations: ['metrics.read'] }])
  assert.equal(metricsOnly.allowsAny({ id: 'prometheus', issuer: 'x' }, 'orders'), false)
  assert.equal(metricsOnly.allowsUnscoped({ id: 'prometheus', issuer: 'x' }, 'metrics.read'), true)
  const both = new GrantPolicy([{ principals: ['ops'], keys: ['*'], operations: ['metrics.read', 'keys.read'] }])
  assert.equal(both.allowsAny({ id: 'ops', issuer: 'x' }, 'orders'), true)
})
