import { test } from 'node:test'
import assert from 'node:assert/strict'
import { developmentPolicy, GrantPolicy } from '../../src/auth/policy.js'
import type { Operation } from '../../src/auth/operations.js'

const policy = new GrantPolicy([
  { principals: ['producer'], keys: ['pay-*'], operations: ['generateDataKey', 'wrap'] },
  { principals: ['consumer', 'svc-*'], keys: ['pay-*', 'default'], operations: ['unwrap'] },
  { principals: ['admin'], keys: ['*'], operations: ['*'], issuer: 'https://issuer.example' },
])

const cases: [string, string, string, Operation, boolean][] = [
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
