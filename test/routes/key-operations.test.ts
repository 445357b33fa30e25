import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { KeyringFile } from '../../src/providers/local/keyring-file.js'
import { startTestApp, type TestApp } from '../support/test-app.js'

let t: TestApp
before(async () => {
  t = await startTestApp()
})
after(() => t.close())

async function rotate(): Promise<void> {
  await new KeyringFile(t.home).rotate('default')
  await t.deps.registry.refreshAll()
}

describe('generateDataKey', () => {
  test('returns a fresh 32-byte key, wrapped and in plaintext, by default', async () => {
    const first = await t.call('generateDataKey', { body: {} })
    const second = await t.call('generateDataKey', { body: {} })
    assert.equal(first.statusCode, 200)
    assert.equal(Buffer.from(first.json.plaintext, 'base64').length, 32)
    assert.notEqual(first.json.plaintext, second.json.plaintext)
    assert.match(first.json.wrappedKey, /^kw1\.\d+\./)
    assert.match(first.json.keyVersion, /^local:\/\/default\/versions\/\d+$/)
    assert.equal(first.headers['cache-control'], 'no-store')
  })

  test('takes no body at all', async () => {
    const response = await t.call('generateDataKey', {})
    assert.equal(response.statusCode, 200)
    assert.equal(Buffer.from(response.json.plaintext, 'base64').length, 32)
  })

  for (const bytes of [16, 24, 32, 64]) {
    test(`generates ${bytes}-byte keys`, async () => {
      const response = await t.call('generateDataKey', { body: { bytes } })
      assert.equal(Buffer.from(response.json.plaintext, 'base64').length, bytes)
      const unwrapped = await t.call('unwrap', { body: { wrappedKey: response.json.wrappedKey } })
      assert.equal(unwrapped.json.plaintext, response.json.plaintext)
    })
  }

  test('includePlaintext: false returns only the wrapped key, which unwraps later', async () => {
    const response = await t.call('generateDataKey', { body: { includePlaintext: false, context: { app: 'x' } } })
    assert.equal(response.json.plaintext, undefined)
    const unwrapped = await t.call('unwrap', { body: { wrappedKey: response.json.wrappedKey, context: { app: 'x' } } })
    assert.equal(Buffer.from(unwrapped.json.plaintext, 'base64').length, 32)
  })
})

describe('wrap and unwrap', () => {
  test('a caller key round-trips with its context, whatever the context order', async () => {
    const plaintext = Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')
    const wrapped = await t.call('wrap', { body: { plaintext, context: { tenant: 'acme', secret: 'db' } } })
    assert.equal(wrapped.statusCode, 200)
    assert.deepEqual(Object.keys(wrapped.json).sort(), ['keyVersion', 'wrappedKey'])
    const unwrapped = await t.call('unwrap', { body: { wrappedKey: wrapped.json.wrappedKey, context: { secret: 'db', tenant: 'acme' } } })
    assert.deepEqual(unwrapped.json, { plaintext, keyVersion: wrapped.json.keyVersion, primary: true })
  })

  test('a wrong, missing or extra context cannot unwrap, and the answer says nothing more', async () => {
    const { json } = await t.call('generateDataKey', { body: { context: { tenant: 'acme' } } })
    const attempts = [{ tenant: 'other' }, undefined, { tenant: 'acme', extra: '' }, { Tenant: 'acme' }]
    for (const context of attempts) {
      const response = await t.call('unwrap', { body: { wrappedKey: json.wrappedKey, ...(context && { context }) } })
      assert.equal(response.statusCode, 422)
      assert.equal(response.json.code, 'cannot_unwrap')
      assert.equal(response.json.detail, undefined)
      assert.equal(response.headers['content-type'], 'application/problem+json')
    }
  })

  test('a wrapped key of one alias cannot be unwrapped under another, even on the same KEK', async () => {
    const other = await startTestApp({ configFile: { keys: { default: 'local://shared', twin: 'local://shared' } } })
    try {
      const { json } = await other.call('generateDataKey', { alias: 'default', body: {} })
      const response = await other.call('unwrap', { alias: 'twin', body: { wrappedKey: json.wrappedKey } })
      assert.equal(response.json.code, 'cannot_unwrap')
    } finally {
      await other.close()
    }
  })

  test('tampered wrapped keys fail authentication (422); ones not in the format are bad input (400), audited as failed', async () => {
    const { json } = await t.call('generateDataKey', { body: {} })
    const key: string = json.wrappedKey
    const tampered = [tamperCiphertext(key), key.replace(/^kw1\.1\./, 'kw1.2.'), key.slice(0, 30), `kw1.1.${Buffer.alloc(60).toString('base64url')}`]
    for (const wrappedKey of tampered) {
      const response = await t.call('unwrap', { body: { wrappedKey } })
      assert.equal(response.statusCode, 422, wrappedKey)
      assert.equal(response.json.code, 'cannot_unwrap')
    }
    const malformed = [
      key.replace(/^kw1/, 'kw9'),
      'not-a-wrapped-key',
      '%%%not base64',
      'kw1.1.',
      'kw1.x.AAAA',
      'kw1.01.AAAA',
      'kw1.0.AAAA',
      'kw1.1234567890.AAAA',
      'kw1.1.AAAA=',
      'kw1.1.AAAAA',
      'kw1.1.AB',
      `kw1.1.${'A'.repeat(20)}+/`,
      ` ${key}`,
      `${key}\n`,
    ]
    const before = t.audit.entries.length
    for (const wrappedKey of malformed) {
      for (const operation of ['unwrap', 'rewrap']) {
        const response = await t.call(operation, { body: { wrappedKey } })
        assert.equal(response.statusCode, 400, `${operation} ${JSON.stringify(wrappedKey)}`)
        assert.equal(response.json.code, 'invalid_wrapped_key')
        assert.equal(response.json.type, 'urn:keywrap:problem:invalid_wrapped_key')
        assert.equal(response.headers['content-type'], 'application/problem+json')
        assert.ok(!response.body.includes(wrappedKey.trim() || '\0'), 'the reply does not echo the wrapped key')
      }
    }
    const entries = t.audit.entries.slice(before)
    assert.equal(entries.length, 2 * malformed.length)
    assert.ok(entries.every((entry) => entry.outcome === 'failed' && entry.errorCode === 'invalid_wrapped_key' && entry.wrappedKeyFingerprint !== undefined))
  })

  test('plaintext must be canonical base64 of 1 to 64 bytes', async () => {
    for (const plaintext of ['', 'AA', 'not base64!', 'AAF=', Buffer.alloc(65).toString('base64'), Buffer.alloc(100).toString('base64')]) {
      const response = await t.call('wrap', { body: { plaintext } })
      assert.equal(response.statusCode, 400, plaintext)
      assert.equal(response.json.code, 'invalid_request')
      assert.ok(
        response.json.errors.some((e: { pointer: string }) => e.pointer === '/body/plaintext'),
        JSON.stringify(response.json),
      )
    }
    assert.equal((await t.call('wrap', { body: { plaintext: Buffer.alloc(64).toString('base64') } })).statusCode, 200)
    assert.equal((await t.call('wrap', { body: { plaintext: 'AA==' } })).statusCode, 200)
  })
})

describe('rewrap and rotation', () => {
  test('under the primary version rewrap changes nothing and calls no provider', async () => {
    const { json } = await t.call('generateDataKey', { body: {} })
    const provider = t.deps.registry.get('default')!
    const encrypt = provider.encrypt.bind(provider)
    const decrypt = provider.decrypt.bind(provider)
    let calls = 0
    provider.encrypt = (...args) => (calls++, encrypt(...args))
    provider.decrypt = (...args) => (calls++, decrypt(...args))
    try {
      const response = await t.call('rewrap', { body: { wrappedKey: json.wrappedKey } })
      assert.deepEqual(response.json, { wrappedKey: json.wrappedKey, keyVersion: json.keyVersion, rewrapped: false })
      assert.equal(calls, 0)
    } finally {
      provider.encrypt = encrypt
      provider.decrypt = decrypt
    }
  })

  test('a no-op rewrap still authenticates: a tampered key or a wrong context is refused', async () => {
    const { json } = await t.call('generateDataKey', { body: { context: { a: '1' } } })
    const tampered = tamperCiphertext(json.wrappedKey)
    for (const body of [
      { wrappedKey: tampered, context: { a: '1' } },
      { wrappedKey: json.wrappedKey, context: { a: '2' } },
      { wrappedKey: 'kw1.1.AAAAAAAA' },
    ]) {
      const response = await t.call('rewrap', { body })
      assert.equal(response.statusCode, 422, JSON.stringify(body))
      assert.equal(response.json.code, 'cannot_unwrap')
    }
  })

  test('a context with a lone UTF-16 surrogate is refused rather than confused with U+FFFD', async () => {
    for (const value of ['\ud800', 'x\udfff']) {
      const response = await t.call('generateDataKey', { body: { context: { tenant: value } } })
      assert.equal(response.statusCode, 400)
      assert.equal(response.json.code, 'invalid_request')
    }
  })

  test('after rotation, unwrap says not primary and rewrap moves the key to the new version', async () => {
    const { json } = await t.call('generateDataKey', { body: { context: { a: '1' } } })
    await rotate()
    const before = await t.call('unwrap', { body: { wrappedKey: json.wrappedKey, context: { a: '1' } } })
    assert.equal(before.json.primary, false)
    const rewrapped = await t.call('rewrap', { body: { wrappedKey: json.wrappedKey, context: { a: '1' } } })
    assert.equal(rewrapped.json.rewrapped, true)
    assert.notEqual(rewrapped.json.wrappedKey, json.wrappedKey)
    assert.notEqual(rewrapped.json.keyVersion, json.keyVersion)
    const after = await t.call('unwrap', { body: { wrappedKey: rewrapped.json.wrappedKey, context: { a: '1' } } })
    assert.deepEqual(after.json, { plaintext: json.plaintext, keyVersion: rewrapped.json.keyVersion, primary: true })
  })

  test('a disabled version is refused with 409, cached or not, and works again once enabled', async () => {
    const { json } = await t.call('generateDataKey', { body: {} })
    const version = Number(json.wrappedKey.split('.')[1])
    await rotate()
    const keyring = new KeyringFile(t.home)
    await keyring.setState('default', version, 'DISABLED')
    await t.deps.registry.refreshAll()
    for (const operation of ['unwrap', 'rewrap']) {
      const response = await t.call(operation, { body: { wrappedKey: json.wrappedKey } })
      assert.equal(response.statusCode, 409)
      assert.equal(response.json.code, 'key_version_not_enabled')
    }
    await keyring.setState('default', version, 'ENABLED')
    await t.deps.registry.refreshAll()
    assert.equal((await t.call('unwrap', { body: { wrappedKey: json.wrappedKey } })).json.plaintext, json.plaintext)
  })
})

describe('batches', () => {
  test('each item gets its own result or problem, in order', async () => {
    const one = await t.call('generateDataKey', { body: { context: { n: '1' } } })
    const two = await t.call('generateDataKey', { body: {} })
    const items = [
      { wrappedKey: one.json.wrappedKey, context: { n: '1' } },
      { wrappedKey: one.json.wrappedKey, context: { n: '2' } },
      { wrappedKey: 'garbage' },
      { wrappedKey: two.json.wrappedKey },
    ]
    const unwrapped = await t.call('batchUnwrap', { body: { items } })
    assert.equal(unwrapped.statusCode, 200)
    const results = unwrapped.json.results
    assert.equal(results.length, 4)
    assert.equal(results[0].plaintext, one.json.plaintext)
    assert.equal(results[1].error.code, 'cannot_unwrap')
    assert.equal(results[1].error.status, 422)
    assert.equal(results[2].error.code, 'invalid_wrapped_key')
    assert.equal(results[2].error.status, 400)
    assert.equal(results[3].plaintext, two.json.plaintext)

    await rotate()
    const rewrapped = await t.call('batchRewrap', { body: { items } })
    const rewrapResults = rewrapped.json.results
    assert.equal(rewrapResults[0].rewrapped, true)
    assert.equal(rewrapResults[1].error.code, 'cannot_unwrap')
    assert.equal(rewrapResults[2].error.code, 'invalid_wrapped_key')
    assert.equal(rewrapResults[3].rewrapped, true)
  })

  test('an invalid item gets its own invalid_request; the others are processed', async () => {
    const { json } = await t.call('generateDataKey', { body: {} })
    const before = t.audit.entries.length
    const response = await t.call('batchUnwrap', {
      body: { items: [{ wrappedKey: '' }, { wrappedKey: json.wrappedKey }, { wrappedKey: json.wrappedKey, surprise: 1 }, { context: { a: 1 } }, null, 'kw1'] },
    })
    assert.equal(response.statusCode, 200)
    const [empty, good, unknownField, noKey, nothing, text] = response.json.results
    assert.equal(nothing.error.errors[0].pointer, '/body/items/4')
    assert.equal(text.error.code, 'invalid_request')
    // Every item is an attempt at a key access: six items, six audit entries.
    assert.equal(t.audit.entries.length - before, 6)
    assert.equal(empty.error.code, 'invalid_request')
    assert.equal(empty.error.errors[0].pointer, '/body/items/0/wrappedKey')
    assert.equal(good.plaintext, json.plaintext)
    assert.equal(unknownField.error.errors[0].pointer, '/body/items/2/surprise')
    assert.deepEqual(noKey.error.errors.map((e: { pointer: string }) => e.pointer).sort(), ['/body/items/3/context/a', '/body/items/3/wrappedKey'])
  })

  test('a batch holds 1 to 1000 items', async () => {
    const { json } = await t.call('generateDataKey', { body: {} })
    const full = await t.call('batchUnwrap', { body: { items: Array.from({ length: 1000 }, () => ({ wrappedKey: json.wrappedKey })) } })
    assert.equal(full.statusCode, 200)
    assert.ok(full.json.results.every((r: { plaintext?: string }) => r.plaintext === json.plaintext))
    for (const length of [0, 1001]) {
      const response = await t.call('batchUnwrap', { body: { items: Array.from({ length }, () => ({ wrappedKey: json.wrappedKey })) } })
      assert.equal(response.statusCode, 400)
      assert.equal(response.json.errors[0].pointer, '/body/items')
    }
  })
})

describe('keys', () => {
  test('listKeys and getKey describe the configured keys', async () => {
    const list = await t.call('listKeys')
    assert.deepEqual(list.json, { keys: [{ alias: 'default' }] })
    const key = await t.call('getKey')
    assert.equal(key.json.alias, 'default')
    assert.equal(key.json.provider, 'local')
    assert.equal(key.json.uri, 'local://default')
    assert.ok(key.json.versions.some((v: { version: number; state: string }) => v.version === key.json.primaryVersion && v.state === 'ENABLED'))
    assert.equal((await t.call('getKey', { alias: 'nope' })).json.code, 'key_not_found')
  })
})

/**
 * The wrapped key with one character of its ciphertext changed, still in the format: one inside a full
 * group of four, away from the last group, whose final character must keep its unused bits zero.
 */
function tamperCiphertext(key: string): string {
  return key.slice(0, -10) + (key.at(-10) === 'A' ? 'B' : 'A') + key.slice(-9)
}
