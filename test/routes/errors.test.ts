import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { startTestApp, type TestApp } from '../support/test-app.js'

let t: TestApp
before(async () => {
  t = await startTestApp({
    configFile: {
      keys: { default: 'local://default', pay: 'local://pay' },
      policy: {
        grants: [
          { principals: ['dev'], keys: ['*'], operations: ['*'] },
          { principals: ['producer'], keys: ['pay'], operations: ['generateDataKey', 'wrap'] },
          { principals: ['consumer'], keys: ['pay'], operations: ['unwrap'] },
        ],
      },
    },
    env: { KEYWRAP_BODY_LIMIT_BYTES: '65536' },
  })
})
after(() => t.close())

function assertProblem(response: { statusCode: number; headers: Record<string, unknown>; json: any }, status: number, code: string) {
  assert.equal(response.statusCode, status, JSON.stringify(response.json))
  assert.equal(response.headers['content-type'], 'application/problem+json')
  assert.equal(response.json.code, code)
  assert.equal(response.json.status, status)
  assert.equal(response.json.type, `urn:keywrap:problem:${code}`)
  assert.equal(response.json.requestId, response.headers['x-request-id'])
  assert.doesNotMatch(JSON.stringify(response.json), /at .*\.ts:\d+|Error:|node_modules|stack/)
}

describe('authentication', () => {
  test('no token: 401 with a Bearer challenge, audited once as denied with its reason and no principal', async () => {
    const before = t.audit.entries.length
    const response = await t.call('generateDataKey', { token: null, body: {} })
    assertProblem(response, 401, 'unauthenticated')
    assert.equal(response.headers['www-authenticate'], 'Bearer realm="keywrap"')
    await new Promise((resolve) => setImmediate(resolve))
    const added = t.audit.entries.slice(before)
    assert.deepEqual(
      added.map((e) => [e.operation, e.alias, e.outcome, e.errorCode, e.principal, e.reason]),
      [['generateDataKey', 'default', 'denied', 'unauthenticated', undefined, 'bearer token refused: missing']],
    )
  })

  test('a bad token: 401 invalid_token, even when the body is bad too', async () => {
    const response = await t.call('unwrap', { token: 'a.b.c', payload: '{not json', contentType: 'application/json' })
    assertProblem(response, 401, 'unauthenticated')
    assert.equal(response.headers['www-authenticate'], 'Bearer realm="keywrap", error="invalid_token", error_description="The bearer token is not valid."')
  })

  test('every /v1 operation requires a token; health, readiness and the contract do not', async () => {
    for (const operationId of ['generateDataKey', 'wrap', 'unwrap', 'rewrap', 'batchUnwrap', 'batchRewrap', 'listKeys', 'getKey']) {
      assertProblem(await t.call(operationId, { token: null, body: {} }), 401, 'unauthenticated')
    }
    for (const operationId of ['getHealth', 'getReadiness', 'getOpenApi']) {
      assert.equal((await t.call(operationId, { token: null })).statusCode, 200)
    }
  })
})

describe('authorisation', () => {
  test('a producer may generate and wrap but not unwrap; the denial is audited and no key is touched', async () => {
    const producer = await t.token('producer')
    const generated = await t.call('generateDataKey', { alias: 'pay', token: producer, body: {} })
    assert.equal(generated.statusCode, 200)
    const decrypt = t.deps.registry.get('pay')!.decrypt
    let decrypts = 0
    t.deps.registry.get('pay')!.decrypt = (...args) => (decrypts++, decrypt.apply(t.deps.registry.get('pay'), args))
    try {
      const denied = await t.call('unwrap', { alias: 'pay', token: producer, body: { wrappedKey: generated.json.wrappedKey } })
      assertProblem(denied, 403, 'forbidden')
      assert.equal(decrypts, 0)
      const entry = t.audit.entries.at(-1)!
      assert.equal(entry.outcome, 'denied')
      assert.equal(entry.principal, 'producer')
      assert.equal(entry.operation, 'unwrap')
      assert.equal(entry.errorCode, 'forbidden')
      const consumer = await t.call('unwrap', { alias: 'pay', token: await t.token('consumer'), body: { wrappedKey: generated.json.wrappedKey } })
      assert.equal(consumer.json.plaintext, generated.json.plaintext)
    } finally {
      t.deps.registry.get('pay')!.decrypt = decrypt
    }
  })

  test('a principal without grants is denied everywhere and lists no keys', async () => {
    const stranger = await t.token('stranger')
    assertProblem(await t.call('generateDataKey', { token: stranger, body: {} }), 403, 'forbidden')
    assertProblem(await t.call('getKey', { token: stranger }), 403, 'forbidden')
    assert.deepEqual((await t.call('listKeys', { token: stranger })).json, { keys: [] })
    assert.deepEqual((await t.call('listKeys', { token: await t.token('consumer') })).json, { keys: [{ alias: 'pay' }] })
  })

  test('a caller without the grant learns nothing from its input: bad key bytes are 403, not 400', async () => {
    const consumer = await t.token('consumer')
    assertProblem(await t.call('wrap', { alias: 'pay', token: consumer, body: { plaintext: 'AAF=' } }), 403, 'forbidden')
    const producer = await t.token('producer')
    assertProblem(await t.call('wrap', { alias: 'pay', token: producer, body: { plaintext: 'AAF=' } }), 400, 'invalid_request')
    assert.deepEqual([t.audit.entries.at(-1)!.outcome, t.audit.entries.at(-1)!.errorCode], ['failed', 'invalid_request'])
  })

  test('a batch without the grant is refused whole, before its items are looked at: one 403, one denied entry naming its size', async () => {
    const before = t.audit.entries.length
    const response = await t.call('batchRewrap', { alias: 'pay', token: await t.token('consumer'), body: { items: [{ wrappedKey: '' }, null] } })
    assertProblem(response, 403, 'forbidden')
    const added = t.audit.entries.slice(before)
    assert.deepEqual(
      added.map((e) => [e.operation, e.outcome, e.errorCode, e.batchSize, e.batchIndex]),
      [['rewrap', 'denied', 'forbidden', 2, undefined]],
    )
  })

  test('an alias the caller holds no grant on is 403 whether or not it exists', async () => {
    const consumer = await t.token('consumer')
    assertProblem(await t.call('unwrap', { alias: 'nope', token: consumer, body: { wrappedKey: 'x' } }), 403, 'forbidden')
    assertProblem(await t.call('unwrap', { alias: 'default', token: consumer, body: { wrappedKey: 'x' } }), 403, 'forbidden')
  })
})

describe('bad input', () => {
  test('unknown alias: 404, audited as failed', async () => {
    assertProblem(await t.call('generateDataKey', { alias: 'nope', body: {} }), 404, 'key_not_found')
    assert.equal(t.audit.entries.at(-1)!.errorCode, 'key_not_found')
    assert.equal(t.audit.entries.at(-1)!.outcome, 'failed')
  })

  test('an alias that cannot be one: 400 naming the path parameter', async () => {
    const response = await t.call('generateDataKey', { alias: 'Not_Valid!', body: {} })
    assertProblem(response, 400, 'invalid_request')
    assert.equal(response.json.errors[0].pointer, '/params/alias')
  })

  const invalidBodies: [string, string, unknown][] = [
    ['generateDataKey', '/body/bytes', { bytes: 31 }],
    ['generateDataKey', '/body/bytes', { bytes: '32' }],
    ['generateDataKey', '/body/includePlaintext', { includePlaintext: 'yes' }],
    ['generateDataKey', '/body/surprise', { surprise: 1 }],
    ['generateDataKey', '/body/context/n', { context: { n: 1 } }],
    ['generateDataKey', '/body/context', { context: 'tenant=acme' }],
    ['generateDataKey', '/body/context', { context: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }],
    ['generateDataKey', '/body/context/x', { context: { x: 'v'.repeat(1025) } }],
    ['wrap', '/body/plaintext', {}],
    ['wrap', '/body/plaintext', { plaintext: 42 }],
    ['unwrap', '/body/wrappedKey', {}],
    ['unwrap', '/body/wrappedKey', { wrappedKey: '' }],
    ['unwrap', '/body/wrappedKey', { wrappedKey: 'k'.repeat(5000) }],
    ['rewrap', '/body/extra', { wrappedKey: 'x', extra: true }],
    ['batchUnwrap', '/body/items', {}],
    ['batchRewrap', '/body/items', { items: 'all' }],
  ]
  for (const [operationId, pointer, body] of invalidBodies) {
    test(`${operationId} ${JSON.stringify(body).slice(0, 60)}: 400 at ${pointer}`, async () => {
      const response = await t.call(operationId, { body })
      assertProblem(response, 400, 'invalid_request')
      assert.ok(
        response.json.errors.some((e: { pointer: string }) => e.pointer === pointer),
        JSON.stringify(response.json.errors),
      )
    })
  }

  test('a body that is not JSON: 400; not application/json: 415; too large: 413', async () => {
    assertProblem(await t.call('unwrap', { payload: '{"wrappedKey": ', contentType: 'application/json' }), 400, 'invalid_request')
    assertProblem(await t.call('unwrap', { payload: '', contentType: 'application/json' }), 400, 'invalid_request')
    assertProblem(await t.call('unwrap', { payload: 'wrappedKey=x', contentType: 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type')
    assertProblem(await t.call('unwrap', { payload: 'x', contentType: 'text/plain' }), 415, 'unsupported_media_type')
    const large = JSON.stringify({ items: Array.from({ length: 1000 }, () => ({ wrappedKey: 'k'.repeat(100) })) })
    assertProblem(await t.call('batchUnwrap', { payload: large, contentType: 'application/json' }), 413, 'payload_too_large')
  })

  test('a member named __proto__, anywhere in the body, is refused and named', async () => {
    for (const payload of ['{"__proto__": {"includePlaintext": false}}', '{"context": {"__proto__": ""}}', '{"constructor": {"prototype": {}}}']) {
      const response = await t.call('generateDataKey', { payload, contentType: 'application/json' })
      assertProblem(response, 400, 'invalid_request')
      assert.match(response.json.detail, /__proto__/)
    }
  })

  test('unknown paths are 404 and wrong methods 405, as problem+json', async () => {
    const unknown = await t.app.inject({ method: 'GET', url: '/v2/nothing' })
    assert.equal(unknown.statusCode, 404)
    assert.equal(JSON.parse(unknown.body).code, 'not_found')
    for (const method of ['GET', 'POST'] as const) {
      const unknownVerb = await t.app.inject({ method, url: '/v1/keys/default:explode', payload: method === 'POST' ? {} : undefined })
      assert.equal(unknownVerb.statusCode, 404)
    }
    const wrongMethod = await t.app.inject({ method: 'GET', url: '/v1/keys/default:unwrap' })
    assert.equal(wrongMethod.statusCode, 405)
    assert.equal(wrongMethod.headers['content-type'], 'application/problem+json')
  })

  test('no input ever yields a 5xx', async () => {
    const token = await t.token()
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('generateDataKey', 'wrap', 'unwrap', 'rewrap', 'batchUnwrap', 'batchRewrap'),
        fc.oneof(
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify({ wrappedKey: v, plaintext: v, context: v, items: [v] })),
        ),
        async (operationId, payload) => {
          const response = await t.call(operationId, { token, payload, contentType: 'application/json' })
          assert.ok(response.statusCode < 500, `${operationId} ${payload} → ${response.statusCode} ${response.body}`)
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('audit', () => {
  test('every key access writes exactly one entry, with no key material', async () => {
    const start = t.audit.entries.length
    const generated = await t.call('generateDataKey', { body: { context: { tenant: 'acme' } } })
    await t.call('unwrap', { body: { wrappedKey: generated.json.wrappedKey, context: { tenant: 'acme' } } })
    await t.call('unwrap', { body: { wrappedKey: generated.json.wrappedKey, context: { tenant: 'evil' } } })
    await t.call('batchUnwrap', { body: { items: [{ wrappedKey: generated.json.wrappedKey, context: { tenant: 'acme' } }, { wrappedKey: 'x' }] } })
    // Items of a batch run in parallel; their entries are in completion order.
    const entries = t.audit.entries.slice(start).sort((a, b) => (a.batchIndex ?? -1) - (b.batchIndex ?? -1) || 0)
    assert.deepEqual(
      entries.map((e) => [e.operation, e.outcome, e.cacheLevel, e.batchIndex]),
      [
        ['generateDataKey', 'allowed', 'provider', undefined],
        ['unwrap', 'allowed', 'l1', undefined],
        ['unwrap', 'failed', 'provider', undefined],
        ['unwrap', 'allowed', 'l1', 0],
        ['unwrap', 'failed', undefined, 1],
      ],
    )
    assert.deepEqual(entries[0]!.context, { tenant: 'acme' })
    assert.equal(entries[0]!.principal, 'dev')
    assert.match(entries[0]!.keyVersion!, /^local:\/\/default\/versions\/\d+$/)
    const text = JSON.stringify(entries)
    const plaintext = Buffer.from(generated.json.plaintext, 'base64')
    for (const secret of [generated.json.plaintext, plaintext.toString('hex'), plaintext.toString('base64url'), generated.json.wrappedKey]) {
      assert.ok(!text.includes(secret), 'audit entries contain key material')
    }
  })

  test('when the audit trail cannot be written, nothing is released: 503', async () => {
    t.audit.failing = true
    try {
      const response = await t.call('generateDataKey', { body: {} })
      assertProblem(response, 503, 'audit_unavailable')
      assert.equal(response.headers['retry-after'], '1')
      assert.ok(!('plaintext' in response.json))
    } finally {
      t.audit.failing = false
    }
  })
})
