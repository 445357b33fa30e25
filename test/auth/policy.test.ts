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
    assert.deepEqual(
      every.filter((operation) => split.allows({ id, issuer }, alias, operation)),
      allowed,
    )
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

// Grant conditions: the request's context, and a reason.

const ISS = 'https://issuer.example'
const tenants = new GrantPolicy([
  { principals: ['svc-*'], keys: ['payments'], operations: ['unwrap', 'wrap', 'keys.read'], context: { tenant: { claim: 'tenant' }, env: 'prod-*' } },
  { principals: ['auditor'], keys: ['payments'], operations: ['unwrap', 'keys.read', 'metrics.read'], requireReason: true },
  { principals: ['batch'], keys: ['payments'], operations: ['unwrap'], context: { tenant: 'acme' } },
  { principals: ['batch'], keys: ['payments'], operations: ['unwrap'], context: { tenant: 'globex' }, requireReason: true },
])
const acme = { id: 'svc-orders', issuer: ISS, claims: { tenant: 'acme' } }

test('a context condition: every listed key present and matching, other keys free', () => {
  assert.equal(tenants.refusal(acme, 'payments', 'unwrap', { context: { tenant: 'acme', env: 'prod-eu', order: '42' } }), undefined)
  assert.equal(tenants.allows(acme, 'payments', 'wrap', { context: { tenant: 'acme', env: 'prod-' } }), true)
})

test('a context condition names what is not met, never the values', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ tenant: 'globex', env: 'prod-eu' }, /^Context key "tenant" must equal the token's claim "tenant"\.$/],
    [{ tenant: 'acme', env: 'staging' }, /^Context key "env" must match "prod-\*"\.$/],
    [{ env: 'prod-eu' }, /^Your grant requires context key "tenant", which must equal the token's claim "tenant"\.$/],
    [{}, /context key "tenant"/],
    [{ Tenant: 'acme', env: 'prod-eu' }, /requires context key "tenant"/],
  ]
  for (const [context, detail] of cases) {
    const refusal = tenants.refusal(acme, 'payments', 'unwrap', { context })
    assert.equal(refusal?.code, 'context_not_allowed', JSON.stringify(context))
    assert.match(refusal.detail!, detail)
    assert.ok(!refusal.detail!.includes('globex') && !refusal.detail!.includes('staging'), 'the values sent are not echoed')
  }
})

test("a claim condition: the claim missing from the token, or another principal's claim", () => {
  const noClaim = { id: 'svc-orders', issuer: ISS }
  const refusal = tenants.refusal(noClaim, 'payments', 'unwrap', { context: { tenant: 'acme', env: 'prod-eu' } })
  assert.equal(refusal?.code, 'context_not_allowed')
  assert.match(refusal.detail!, /the token carries no such string claim/)
  const globex = { ...acme, claims: { tenant: 'globex' } }
  assert.equal(tenants.allows(globex, 'payments', 'unwrap', { context: { tenant: 'acme', env: 'prod-eu' } }), false)
  assert.equal(tenants.allows(globex, 'payments', 'unwrap', { context: { tenant: 'globex', env: 'prod-eu' } }), true)
  // A pattern in a claim is a value like any other, not a pattern.
  const star = { ...acme, claims: { tenant: '*' } }
  assert.equal(tenants.allows(star, 'payments', 'unwrap', { context: { tenant: 'acme', env: 'prod-eu' } }), false)
})

test('operations that take no context are not concerned by context conditions', () => {
  assert.equal(tenants.refusal(acme, 'payments', 'keys.read'), undefined)
  assert.equal(tenants.refusal(acme, 'payments', 'unwrap', { reason: 'x' }), undefined, 'the batch-level check (no context)')
  assert.equal(tenants.refusal(acme, 'payments', 'rewrap')?.code, 'forbidden', 'still no grant of rewrap')
})

test('requireReason: refused without one, allowed with any', () => {
  const auditor = { id: 'auditor', issuer: ISS }
  const refusal = tenants.refusal(auditor, 'payments', 'unwrap', { context: {} })
  assert.equal(refusal?.code, 'reason_required')
  assert.match(refusal.detail!, /x-keywrap-reason/)
  assert.equal(tenants.refusal(auditor, 'payments', 'unwrap', { context: {}, reason: 'INC-1' }), undefined)
  assert.equal(tenants.refusal(auditor, 'payments', 'keys.read')?.code, 'reason_required', 'for every call under the grant')
  assert.equal(tenants.unscopedRefusal(auditor, 'metrics.read')?.code, 'reason_required')
  assert.equal(tenants.allowsUnscoped(auditor, 'metrics.read', { reason: 'dashboard' }), true)
  assert.equal(tenants.allowsAny(auditor, 'payments'), false, 'GET /v1/keys lists it only with a reason')
  assert.equal(tenants.allowsAny(auditor, 'payments', { reason: 'INC-1' }), true)
})

test("several grants: any one met allows; else the first one's unmet condition", () => {
  const batch = { id: 'batch', issuer: ISS }
  assert.equal(tenants.allows(batch, 'payments', 'unwrap', { context: { tenant: 'acme' } }), true)
  assert.equal(tenants.refusal(batch, 'payments', 'unwrap', { context: { tenant: 'globex' } })?.code, 'reason_required')
  assert.equal(tenants.allows(batch, 'payments', 'unwrap', { context: { tenant: 'globex' }, reason: 'migration' }), true)
  const refusal = tenants.refusal(batch, 'payments', 'unwrap', { context: { tenant: 'initech' } })
  assert.deepEqual(refusal, { code: 'context_not_allowed', detail: 'Context key "tenant" must match "acme".' })
  // Without a context (the batch-level check) the grant without requireReason allows.
  assert.equal(tenants.refusal(batch, 'payments', 'unwrap'), undefined)
})

test('no grant at all is forbidden, whatever the conditions of others', () => {
  assert.deepEqual(tenants.refusal({ id: 'nobody', issuer: ISS }, 'payments', 'unwrap', { context: {} }), {
    code: 'forbidden',
    detail: 'You may not unwrap with key "payments".',
  })
  assert.equal(tenants.refusal(acme, 'orders', 'unwrap', { context: { tenant: 'acme', env: 'prod-1' } })?.code, 'forbidden')
})

test('a condition on the key "__proto__" is a condition like any other', () => {
  const odd = new GrantPolicy([{ principals: ['*'], keys: ['*'], operations: ['unwrap'], context: JSON.parse('{"__proto__": "x"}') }])
  assert.equal(odd.allows({ id: 'a', issuer: ISS }, 'k', 'unwrap', { context: {} }), false)
  assert.equal(odd.allows({ id: 'a', issuer: ISS }, 'k', 'unwrap', { context: JSON.parse('{"__proto__": "x"}') }), true)
})
