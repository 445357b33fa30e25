/** Where each KEK version is still used: GET /v1/keys/{alias}, /metrics and the audit entries of rewraps. */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { KeyringFile } from '../../src/providers/local/keyring-file.js'
import { startTestApp, type TestApp } from '../support/test-app.js'

let t: TestApp
before(async () => {
  t = await startTestApp()
})
after(() => t.close())

describe('per-version uses', () => {
  test('count allowed accesses by the version used: presented for unwrap and rewrap, wrapping for generate and wrap', async () => {
    const started = Date.now()
    const before = await t.call('getKey', {})
    assert.equal(before.statusCode, 200)
    assert.ok(Date.parse(before.json.usesSince) <= started)
    assert.equal(before.json.versions[0].uses, undefined, 'not used yet')

    const old = await t.call('generateDataKey', { body: { context: { n: '1' } } })
    await t.call('wrap', { body: { plaintext: Buffer.alloc(32, 7).toString('base64') } })
    await t.call('unwrap', { body: { wrappedKey: old.json.wrappedKey, context: { n: '1' } } })
    await t.call('unwrap', { body: { wrappedKey: old.json.wrappedKey, context: { n: '2' } } }) // fails: not a use
    await new KeyringFile(t.home).rotate('default')
    await t.deps.registry.refreshAll()
    const rewrapped = await t.call('rewrap', { body: { wrappedKey: old.json.wrappedKey, context: { n: '1' } } })
    assert.equal(rewrapped.json.rewrapped, true)
    await t.call('unwrap', { body: { wrappedKey: rewrapped.json.wrappedKey, context: { n: '1' } } })

    const rewrapEntry = t.audit.entries.findLast((entry) => entry.operation === 'rewrap')!
    assert.equal(rewrapEntry.sourceKeyVersion, 'local://default/versions/1')
    assert.equal(rewrapEntry.keyVersion, 'local://default/versions/2')

    const key = await t.call('getKey', {})
    const [v1, v2] = key.json.versions
    assert.deepEqual(v1.uses, { generateDataKey: 1, generateDataKeyWithoutPlaintext: 0, wrap: 1, unwrap: 1, rewrap: 1 })
    assert.deepEqual(v2.uses, { generateDataKey: 0, generateDataKeyWithoutPlaintext: 0, wrap: 0, unwrap: 1, rewrap: 0 })
    assert.ok(Date.parse(v1.lastUsedAt) >= started && Date.parse(v1.lastUsedAt) <= Date.parse(v2.lastUsedAt))

    const metrics = await t.call('getMetrics', {})
    assert.match(metrics.body, /keywrap_key_version_uses_total\{alias="default",key_version="1",operation="unwrap"\} 1\n/)
    assert.match(metrics.body, /keywrap_key_version_uses_total\{alias="default",key_version="1",operation="rewrap"\} 1\n/)
    assert.match(metrics.body, /keywrap_key_version_uses_total\{alias="default",key_version="2",operation="unwrap"\} 1\n/)
    assert.doesNotMatch(metrics.body, /key_version="2",operation="rewrap"/)
  })
})
