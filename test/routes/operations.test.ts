import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startTestApp, type TestApp } from '../support/test-app.js'

let t: TestApp
before(async () => {
  t = await startTestApp({
    configFile: {
      policy: {
        grants: [
          { principals: ['dev'], keys: ['*'], operations: ['*'] },
          { principals: ['prometheus'], keys: ['*'], operations: ['metrics.read'] },
          { principals: ['app'], keys: ['default'], operations: ['generateDataKey', 'unwrap'] },
        ],
      },
    },
  })
})
after(() => t.close())

describe('GET /metrics', () => {
  test('serves Prometheus text to principals granted metrics.read', async () => {
    await t.call('generateDataKey', { token: await t.token('app'), body: {} })
    const response = await t.call('getMetrics', { token: await t.token('prometheus') })
    assert.equal(response.statusCode, 200)
    assert.match(String(response.headers['content-type']), /^text\/plain/)
    assert.match(response.body, /keywrap_key_accesses_total\{operation="generateDataKey",outcome="allowed"\} 1/)
    assert.match(response.body, /keywrap_http_request_seconds_bucket\{le="[^"]+",operation="generateDataKey",status="200"\}/)
  })

  test('refuses other principals (403) and anonymous callers (401)', async () => {
    assert.equal((await t.call('getMetrics', { token: await t.token('app') })).statusCode, 403)
    assert.equal((await t.call('getMetrics', { token: null })).statusCode, 401)
  })
})

describe('purgeCache', () => {
  test('drops cached keys of the alias: the next unwrap goes to the provider; audited as cache.purge', async () => {
    const app = await t.token('app')
    const generated = await t.call('generateDataKey', { token: app, body: {} })
    await t.call('unwrap', { token: app, body: { wrappedKey: generated.json.wrappedKey } })
    assert.equal(t.audit.entries.at(-1)!.cacheLevel, 'l1')
    const purged = await t.call('purgeCache', {})
    assert.deepEqual(purged.json, { alias: 'default', purged: true })
    assert.deepEqual([t.audit.entries.at(-1)!.operation, t.audit.entries.at(-1)!.outcome], ['cache.purge', 'allowed'])
    const unwrapped = await t.call('unwrap', { token: app, body: { wrappedKey: generated.json.wrappedKey } })
    assert.equal(unwrapped.json.plaintext, generated.json.plaintext)
    assert.equal(t.audit.entries.at(-1)!.cacheLevel, 'provider')
  })

  test('needs cache.purge', async () => {
    const response = await t.call('purgeCache', { token: await t.token('app') })
    assert.equal(response.statusCode, 403)
    assert.equal(t.audit.entries.at(-1)!.outcome, 'denied')
  })
})

describe('readiness', () => {
  test('ready, shallow and deep; not ready (503) once a provider cannot be read', async () => {
    const shallow = await t.call('getReadiness', { token: null })
    assert.deepEqual([shallow.statusCode, shallow.json.status, shallow.json.cache], [200, 'ready', 'ok'])
    assert.deepEqual(shallow.json.keys, { total: 1, notReady: 0 })
    // Anonymous: it counts keys and names none.
    assert.ok(!shallow.body.includes('default'), shallow.body)
    assert.equal((await t.call('getKey', { alias: 'default' })).json.ready, true)
    const deep = await t.app.inject({ method: 'GET', url: '/readyz?deep=true' })
    assert.equal(deep.statusCode, 200)
    assert.equal((await t.app.inject({ method: 'GET', url: '/readyz?deep=maybe' })).statusCode, 400)

    await writeFile(join(t.home, 'keyring.json'), 'not json')
    await t.deps.registry.refreshAll()
    const broken = await t.call('getReadiness', { token: null })
    assert.equal(broken.statusCode, 503)
    assert.deepEqual(broken.json.keys, { total: 1, notReady: 1 })
    const key = await t.call('getKey', { alias: 'default' })
    assert.equal(key.statusCode, 200)
    assert.equal(key.json.ready, false)
    assert.equal((await t.call('getHealth', { token: null })).statusCode, 200)
  })
})

describe('caller address', () => {
  test('behind a proxy, the audit trail takes the hop the proxy appended, not what the client wrote', async () => {
    const proxied = await startTestApp({ env: { KEYWRAP_TRUST_PROXY: 'true' } })
    try {
      await proxied.call('generateDataKey', { body: {}, headers: { 'x-forwarded-for': '6.6.6.6, 35.1.2.3' } })
      assert.equal(proxied.audit.entries.at(-1)!.remoteAddress, '35.1.2.3')
      assert.equal(proxied.audit.entries.at(-1)!.peerAddress, '127.0.0.1', 'the proxy that forwarded it, beside the forwarded address')
      await proxied.call('generateDataKey', { body: {}, headers: { 'x-forwarded-for': 'not-an-address' } })
      assert.equal(proxied.audit.entries.at(-1)!.remoteAddress, '127.0.0.1')
      assert.equal(proxied.audit.entries.at(-1)!.peerAddress, undefined, 'the same address is not written twice')
    } finally {
      await proxied.close()
    }
  })
})

describe('request ids', () => {
  test('the server chooses every request id; a client X-Request-ID is recorded beside it, never in its place', async () => {
    const first = await t.call('generateDataKey', { body: {}, headers: { 'x-request-id': 'client-chosen-1' } })
    const second = await t.call('generateDataKey', { body: {}, headers: { 'x-request-id': 'client-chosen-1' } })
    const ids = [first.headers['x-request-id'], second.headers['x-request-id']]
    assert.notEqual(ids[0], 'client-chosen-1')
    assert.notEqual(ids[0], ids[1], 'one id for two requests')
    const [a, b] = t.audit.entries.slice(-2)
    assert.deepEqual([a!.requestId, b!.requestId], ids)
    assert.deepEqual([a!.clientRequestId, b!.clientRequestId], ['client-chosen-1', 'client-chosen-1'])
    const refused = await t.call('generateDataKey', { body: {}, headers: { 'x-request-id': 'x'.repeat(129) } })
    assert.equal(refused.statusCode, 200)
    assert.equal(t.audit.entries.at(-1)!.clientRequestId, undefined, 'not the shape of an id: left out')
    assert.equal(t.audit.entries.at(-1)!.peerAddress, undefined, 'no proxy: the peer is the remote address')
  })
})
