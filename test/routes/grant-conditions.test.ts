/**
 * Grant conditions through the HTTP API, with real tokens: a tenant's workload may use a shared KEK
 * only under its own tenant's context (a claim of its token), patterns on context values, batches whose
 * items meet the conditions or not, and grants that require a reason (x-keywrap-reason), which every
 * audit entry of the call records as callerReason.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startTestApp, type TestApp } from '../support/test-app.js'

const ALL_KEY_OPERATIONS = ['generateDataKey', 'wrap', 'unwrap', 'rewrap', 'keys.read']
const grants = [
  { principals: ['admin'], keys: ['*'], operations: ['*'] },
  { principals: ['tenant-svc'], keys: ['payments'], operations: ALL_KEY_OPERATIONS, context: { tenant: { claim: 'tenant' } } },
  { principals: ['reporter'], keys: ['payments'], operations: ['unwrap'], context: { region: 'eu-*', app: 'billing' } },
  { principals: ['auditor'], keys: ['payments'], operations: ['unwrap', 'rewrap', 'keys.read', 'metrics.read'], requireReason: true },
]

let t: TestApp
let admin: string
const wrapped: Record<string, string> = {}

before(async () => {
  t = await startTestApp({ configFile: { keys: { payments: 'local://payments' }, policy: { grants } } })
  admin = await t.token('admin')
  for (const [name, context] of Object.entries({ acme: { tenant: 'acme', order: '1' }, globex: { tenant: 'globex', order: '2' }, none: undefined })) {
    const generated = await t.call('generateDataKey', { alias: 'payments', token: admin, body: context ? { context } : {} })
    assert.equal(generated.statusCode, 200, generated.body)
    wrapped[name] = generated.json.wrappedKey
  }
})
after(() => t?.close())

/** The audit entries of the request that answered `response`. */
function entriesOf(response: { headers: Record<string, unknown> }) {
  return t.audit.entries.filter((entry) => entry.requestId === response.headers['x-request-id'])
}

describe('context conditions', () => {
  test('a claim condition: the tenant of the token may use its own context, and only its own', async () => {
    const acme = await t.token('tenant-svc', { tenant: 'acme' })
    const generated = await t.call('generateDataKey', { alias: 'payments', token: acme, body: { context: { tenant: 'acme', invoice: '7' } } })
    assert.equal(generated.statusCode, 200, 'extra context keys are free')
    const unwrapped = await t.call('unwrap', { alias: 'payments', token: acme, body: { wrappedKey: wrapped.acme, context: { tenant: 'acme', order: '1' } } })
    assert.equal(unwrapped.statusCode, 200)

    const other = await t.call('unwrap', { alias: 'payments', token: acme, body: { wrappedKey: wrapped.globex, context: { tenant: 'globex', order: '2' } } })
    assert.equal(other.statusCode, 403)
    assert.equal(other.json.code, 'context_not_allowed')
    assert.equal(other.json.detail, `Context key "tenant" must equal the token's claim "tenant".`)
    assert.ok(!other.body.includes('globex') && !other.body.includes('acme'), 'neither the value sent nor the claim is echoed')
    const [entry] = entriesOf(other)
    assert.deepEqual([entry?.operation, entry?.outcome, entry?.errorCode, entry?.principal], ['unwrap', 'denied', 'context_not_allowed', 'tenant-svc'])
    assert.equal(entry?.reason, other.json.detail, 'the audit entry names the condition')

    const minted = await t.call('generateDataKey', { alias: 'payments', token: acme, body: { context: { tenant: 'globex' } } })
    assert.equal(minted.json.code, 'context_not_allowed', 'a tenant cannot make keys bound to another tenant')
    const wrappedForOther = await t.call('wrap', {
      alias: 'payments',
      token: acme,
      body: { plaintext: Buffer.alloc(32, 1).toString('base64'), context: { tenant: 'globex' } },
    })
    assert.equal(wrappedForOther.json.code, 'context_not_allowed')
  })

  test('a claim condition with the claim missing from the token, or a key missing from the context', async () => {
    const unclaimed = await t.token('tenant-svc')
    const refused = await t.call('unwrap', { alias: 'payments', token: unclaimed, body: { wrappedKey: wrapped.acme, context: { tenant: 'acme', order: '1' } } })
    assert.equal(refused.statusCode, 403)
    assert.match(refused.json.detail, /the token carries no such string claim/)

    const acme = await t.token('tenant-svc', { tenant: 'acme' })
    const noContext = await t.call('unwrap', { alias: 'payments', token: acme, body: { wrappedKey: wrapped.none } })
    assert.equal(noContext.json.code, 'context_not_allowed')
    assert.equal(noContext.json.detail, `Your grant requires context key "tenant", which must equal the token's claim "tenant".`)
    const otherKeys = await t.call('generateDataKey', { alias: 'payments', token: acme, body: { context: { Tenant: 'acme' } } })
    assert.equal(otherKeys.json.code, 'context_not_allowed', 'keys are compared exactly')
  })

  test('patterns: equal and wildcard', async () => {
    const reporter = await t.token('reporter')
    const contexts: [Record<string, string>, number][] = [
      [{ region: 'eu-west', app: 'billing' }, 200],
      [{ region: 'eu-', app: 'billing', extra: 'x' }, 200],
      [{ region: 'us-east', app: 'billing' }, 403],
      [{ region: 'eu-west', app: 'billing-v2' }, 403],
      [{ region: 'eu-west' }, 403],
    ]
    for (const [context, status] of contexts) {
      const made = await t.call('generateDataKey', { alias: 'payments', token: admin, body: { context } })
      const unwrapped = await t.call('unwrap', { alias: 'payments', token: reporter, body: { wrappedKey: made.json.wrappedKey, context } })
      assert.equal(unwrapped.statusCode, status, JSON.stringify(context))
      if (status === 403) assert.match(unwrapped.json.detail, /^(Context key|Your grant requires context key) "(region|app)"/)
    }
  })

  test('operations without a context are not concerned: key metadata under a conditional grant', async () => {
    const acme = await t.token('tenant-svc', { tenant: 'acme' })
    assert.equal((await t.call('getKey', { alias: 'payments', token: acme })).statusCode, 200)
    assert.deepEqual((await t.call('listKeys', { token: acme })).json.keys, [{ alias: 'payments' }])
  })

  test('batchUnwrap with mixed items: the items that meet the condition go through, the others get their own 403', async () => {
    const acme = await t.token('tenant-svc', { tenant: 'acme' })
    const items = [
      { wrappedKey: wrapped.acme, context: { tenant: 'acme', order: '1' } },
      { wrappedKey: wrapped.globex, context: { tenant: 'globex', order: '2' } },
      { wrappedKey: wrapped.none },
      { wrappedKey: 'not a wrapped key', context: 'nope' },
      { wrappedKey: wrapped.acme, context: { tenant: 'acme', order: '1' } },
    ]
    const response = await t.call('batchUnwrap', { alias: 'payments', token: acme, body: { items } })
    assert.equal(response.statusCode, 200)
    const results = response.json.results
    assert.equal(typeof results[0].plaintext, 'string')
    assert.deepEqual(
      results.slice(1, 4).map((result: any) => result.error.code),
      ['context_not_allowed', 'context_not_allowed', 'invalid_request'],
    )
    assert.equal(results[4].plaintext, results[0].plaintext)
    const entries = entriesOf(response).sort((a, b) => a.batchIndex! - b.batchIndex!)
    assert.deepEqual(
      entries.map((entry) => [entry.batchIndex, entry.outcome, entry.errorCode]),
      [
        [0, 'allowed', undefined],
        [1, 'denied', 'context_not_allowed'],
        [2, 'denied', 'context_not_allowed'],
        [3, 'failed', 'invalid_request'],
        [4, 'allowed', undefined],
      ],
    )
  })

  test('batchRewrap with mixed items, and a batch with no grant at all refused whole', async () => {
    const acme = await t.token('tenant-svc', { tenant: 'acme' })
    const items = [
      { wrappedKey: wrapped.globex, context: { tenant: 'globex', order: '2' } },
      { wrappedKey: wrapped.acme, context: { tenant: 'acme', order: '1' } },
    ]
    const response = await t.call('batchRewrap', { alias: 'payments', token: acme, body: { items } })
    assert.equal(response.statusCode, 200)
    assert.equal(response.json.results[0].error.code, 'context_not_allowed')
    assert.equal(response.json.results[1].rewrapped, false)

    const reporter = await t.token('reporter')
    const whole = await t.call('batchRewrap', { alias: 'payments', token: reporter, body: { items } })
    assert.equal(whole.statusCode, 403)
    assert.equal(whole.json.code, 'forbidden')
    const entries = entriesOf(whole)
    assert.deepEqual(
      entries.map((entry) => [entry.errorCode, entry.batchSize]),
      [['forbidden', 2]],
    )
  })
})

describe('reasons', () => {
  test('a grant with requireReason: refused without one (reason_required), allowed and recorded with one', async () => {
    const auditor = await t.token('auditor')
    const body = { wrappedKey: wrapped.acme, context: { tenant: 'acme', order: '1' } }
    const refused = await t.call('unwrap', { alias: 'payments', token: auditor, body })
    assert.equal(refused.statusCode, 403)
    assert.equal(refused.json.code, 'reason_required')
    assert.match(refused.json.detail, /x-keywrap-reason/)
    assert.deepEqual(
      entriesOf(refused).map((entry) => [entry.outcome, entry.errorCode, entry.callerReason]),
      [['denied', 'reason_required', undefined]],
    )

    const reason = 'INC-4711: customer 42 asked for an export'
    const allowed = await t.call('unwrap', { alias: 'payments', token: auditor, body, headers: { 'x-keywrap-reason': reason } })
    assert.equal(allowed.statusCode, 200)
    const [entry] = entriesOf(allowed)
    assert.deepEqual([entry?.outcome, entry?.callerReason, entry?.reason], ['allowed', reason, undefined], 'callerReason, not reason')
  })

  test('requireReason covers every call under the grant: key metadata, the key list, metrics, a whole batch', async () => {
    const auditor = await t.token('auditor')
    const reason = { 'x-keywrap-reason': 'quarterly review' }
    const getKey = await t.call('getKey', { alias: 'payments', token: auditor })
    assert.deepEqual([getKey.statusCode, getKey.json.code], [403, 'reason_required'])
    assert.equal((await t.call('getKey', { alias: 'payments', token: auditor, headers: reason })).statusCode, 200)
    assert.deepEqual((await t.call('listKeys', { token: auditor })).json.keys, [])
    assert.deepEqual((await t.call('listKeys', { token: auditor, headers: reason })).json.keys, [{ alias: 'payments' }])
    const metrics = await t.call('getMetrics', { token: auditor })
    assert.deepEqual([metrics.statusCode, metrics.json.code], [403, 'reason_required'])
    assert.equal((await t.call('getMetrics', { token: auditor, headers: reason })).statusCode, 200)

    const items = [{ wrappedKey: wrapped.acme, context: { tenant: 'acme', order: '1' } }, { wrappedKey: wrapped.none }]
    const batch = await t.call('batchUnwrap', { alias: 'payments', token: auditor, body: { items } })
    assert.deepEqual([batch.statusCode, batch.json.code], [403, 'reason_required'])
    assert.deepEqual(
      entriesOf(batch).map((entry) => [entry.errorCode, entry.batchSize]),
      [['reason_required', 2]],
    )
    const given = await t.call('batchUnwrap', { alias: 'payments', token: auditor, body: { items }, headers: reason })
    assert.equal(given.statusCode, 200)
    assert.ok(given.json.results.every((result: any) => typeof result.plaintext === 'string'))
    assert.deepEqual(
      entriesOf(given).map((entry) => entry.callerReason),
      ['quarterly review', 'quarterly review'],
    )
  })

  test('any call may give a reason; it is recorded on allowed, denied and refused calls alike', async () => {
    const reason = { 'x-keywrap-reason': 'backfill job #12' }
    const allowed = await t.call('generateDataKey', { alias: 'payments', token: admin, body: {}, headers: reason })
    assert.equal(entriesOf(allowed)[0]?.callerReason, 'backfill job #12')
    const acme = await t.token('tenant-svc', { tenant: 'acme' })
    const denied = await t.call('unwrap', {
      alias: 'payments',
      token: acme,
      body: { wrappedKey: wrapped.globex, context: { tenant: 'globex' } },
      headers: reason,
    })
    assert.deepEqual(
      entriesOf(denied).map((entry) => [entry.outcome, entry.callerReason]),
      [['denied', 'backfill job #12']],
    )
    const invalidBody = await t.call('unwrap', { alias: 'payments', token: admin, body: { wrappedKey: 7 }, headers: reason })
    assert.equal(invalidBody.statusCode, 400)
    await eventually(() => entriesOf(invalidBody).length === 1)
    assert.equal(entriesOf(invalidBody)[0]?.callerReason, 'backfill job #12')
    const anonymous = await t.call('unwrap', { alias: 'payments', token: null, body: { wrappedKey: wrapped.acme }, headers: reason })
    assert.equal(anonymous.statusCode, 401)
    await eventually(() => entriesOf(anonymous).length === 1)
    assert.equal(entriesOf(anonymous)[0]?.callerReason, undefined, "an anonymous caller's text is not recorded")
  })
})

describe('invalid reasons', () => {
  let url: URL
  before(async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 })
    url = new URL(`http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}/v1/keys/payments:unwrap`)
  })

  /** A real request over a socket, so that repeated and unusual headers reach the server as sent (several values: several lines). */
  async function send(reasonHeaders: string[]): Promise<{ status: number; body: any; requestId: string }> {
    const headers = { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'x-keywrap-reason': reasonHeaders }
    return new Promise((resolve, reject) => {
      const request = httpRequest(url, { method: 'POST', headers }, (response) => {
        let text = ''
        response.setEncoding('utf8')
        response.on('data', (chunk: string) => (text += chunk))
        response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(text), requestId: String(response.headers['x-request-id']) }))
      })
      request.on('error', reject)
      request.end(JSON.stringify({ wrappedKey: wrapped.none }))
    })
  }

  test('empty, too long, not printable ASCII or sent twice: 400 naming the header, audited, no key used', async () => {
    const cases: [string[], RegExp][] = [
      [[''], /is empty/],
      [['x'.repeat(257)], /is 257 characters long; at most 256/],
      [['tab\there'], /printable ASCII/],
      [['caf\u00e9'], /printable ASCII/],
      [['one', 'two'], /more than once/],
    ]
    for (const [headers, detail] of cases) {
      const response = await send(headers)
      assert.equal(response.status, 400, JSON.stringify(headers))
      assert.equal(response.body.code, 'invalid_request')
      assert.equal(response.body.errors[0].pointer, '/headers/x-keywrap-reason')
      assert.match(response.body.detail, detail)
      await eventually(() => t.audit.entries.some((entry) => entry.requestId === response.requestId))
      const entries = t.audit.entries.filter((entry) => entry.requestId === response.requestId)
      assert.deepEqual(
        entries.map((entry) => [entry.outcome, entry.errorCode, entry.principal, entry.callerReason]),
        [['failed', 'invalid_request', 'admin', undefined]],
      )
    }
    assert.equal((await send(['x'.repeat(256)])).status, 200, '256 characters are allowed')
    assert.equal((await send([' ~!"#$%&\'()*+,-./0123456789:;<=>?@[\\]^_`{|}'])).status, 200, 'any printable ASCII')
  })
})

async function eventually(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) assert.fail('not within the time allowed')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
