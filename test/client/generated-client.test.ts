/**
 * A client generated from openapi.yaml (openapi-typescript types + openapi-fetch) against a real
 * listening keywrap: the committed types must be what the generator makes of the spec today, and the
 * typed client must be able to do everything the spec says, through every operation.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { fileURLToPath, pathToFileURL } from 'node:url'
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript'
import createClient, { type Client } from 'openapi-fetch'
import { loadContract, OPENAPI_PATH } from '../../src/http/openapi-contract.js'
import { KeyringFile } from '../../src/providers/local/keyring-file.js'
import { startTestApp, type TestApp } from '../support/test-app.js'
import type { components, paths } from '../../src/http/openapi-types.js'

type Problem = components['schemas']['Problem']
type KeyDetails = components['schemas']['KeyDetails']

const TYPES_PATH = fileURLToPath(new URL('../../src/http/openapi-types.ts', import.meta.url))
const PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url))
const TYPES_SCRIPT = 'openapi-typescript openapi.yaml -o src/http/openapi-types.ts --default-non-nullable false'
const contract = loadContract()

describe('src/http/openapi-types.ts', () => {
  test('is exactly what openapi-typescript generates from openapi.yaml today', async () => {
    // The generator options below are the CLI defaults; they must stay those of `npm run openapi:types`.
    const scripts = (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { scripts: Record<string, string> }).scripts
    assert.equal(scripts['openapi:types'], TYPES_SCRIPT, 'package.json openapi:types changed: update the options this test generates with')
    const generated = COMMENT_HEADER + astToString(await openapiTS(pathToFileURL(OPENAPI_PATH), { silent: true, defaultNonNullable: false }))
    const committed = readFileSync(TYPES_PATH, 'utf8')
    assert.ok(generated === committed, 'src/http/openapi-types.ts is out of date with openapi.yaml: run `npm run openapi:types` and commit the result')
  })
})

describe('the typed openapi-fetch client, against a listening keywrap', () => {
  let t: TestApp
  let client: Client<paths>
  let anonymous: Client<paths>
  const alias = { params: { path: { alias: 'default' } } } as const
  const context = { tenant: 'acme', table: 'invoices' }
  /** "METHOD /spec/path" of every request the client made. */
  const exercised = new Set<string>()

  before(async () => {
    t = await startTestApp()
    await t.app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = t.app.server.address() as AddressInfo
    const baseUrl = `http://127.0.0.1:${port}`
    client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${await t.token()}` } })
    anonymous = createClient<paths>({ baseUrl })
    for (const each of [client, anonymous]) {
      each.use({
        onRequest({ request, schemaPath }) {
          exercised.add(`${request.method} ${schemaPath}`)
        },
      })
    }
  })
  after(async () => {
    await t.close()
  })

  // State the operations below build on, in order.
  let dataKey: { wrappedKey: string; keyVersion: string; plaintext: string }
  let wrapped: { wrappedKey: string; keyVersion: string; plaintext: string }

  test('getHealth and getReadiness (public)', async () => {
    const health = await anonymous.GET('/healthz')
    assert.equal(health.response.status, 200)
    assert.deepEqual(health.data, { status: 'ok' })

    const readiness = await anonymous.GET('/readyz')
    assert.equal(readiness.response.status, 200)
    assert.equal(readiness.data?.status, 'ready')
    assert.deepEqual(readiness.data?.keys, { total: 1, notReady: 0 })

    const deep = await anonymous.GET('/readyz', { params: { query: { deep: 'true' } } })
    assert.equal(deep.response.status, 200)
    assert.equal(deep.data?.status, 'ready')
  })

  test('getMetrics (Prometheus text) and purgeCache', async () => {
    const metrics = await client.GET('/metrics', { parseAs: 'text' })
    assert.equal(metrics.response.status, 200)
    assert.match(String(metrics.data), /^# HELP keywrap_/m)
    assert.match(String(metrics.data), /keywrap_http_request_seconds_count\{operation="getHealth",status="200"\} [1-9]/)

    const purged = await client.POST('/v1/keys/{alias}:purgeCache', { ...alias, body: {} })
    assert.equal(purged.response.status, 200, JSON.stringify(purged.error))
    assert.deepEqual(purged.data, { alias: 'default', purged: true })
  })

  test('getOpenApi (public) returns the contract as text', async () => {
    const { data, response } = await anonymous.GET('/openapi.yaml', { parseAs: 'text' })
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('content-type')?.split(';')[0], 'application/yaml')
    assert.equal(data, contract.text)
  })

  test('listKeys and getKey', async () => {
    const list = await client.GET('/v1/keys')
    assert.equal(list.response.status, 200)
    assert.ok(
      list.data?.keys.some((key) => key.alias === 'default'),
      JSON.stringify(list.data),
    )

    const key = await client.GET('/v1/keys/{alias}', alias)
    assert.equal(key.response.status, 200, JSON.stringify(key.error))
    const details: KeyDetails = key.data!
    assert.equal(details.alias, 'default')
    assert.equal(details.provider, 'local')
    assert.equal(details.primaryVersion, 1)
    assert.deepEqual(
      details.versions.map(({ version, state }) => ({ version, state })),
      [{ version: 1, state: 'ENABLED' }],
    )
  })

  test('generateDataKey: defaults (no body), with context, without plaintext, 64 bytes', async () => {
    const defaults = await client.POST('/v1/keys/{alias}:generateDataKey', alias)
    assert.equal(defaults.response.status, 200, JSON.stringify(defaults.error))
    assert.equal(Buffer.from(defaults.data!.plaintext!, 'base64').length, 32, 'the default size is 32 bytes')

    const withContext = await client.POST('/v1/keys/{alias}:generateDataKey', { ...alias, body: { context } })
    assert.equal(withContext.response.status, 200, JSON.stringify(withContext.error))
    const { wrappedKey, keyVersion, plaintext } = withContext.data!
    assert.ok(plaintext)
    assert.equal(Buffer.from(plaintext, 'base64').length, 32)
    assert.match(wrappedKey, /^kw1\./)
    dataKey = { wrappedKey, keyVersion, plaintext }

    const wrappedOnly = await client.POST('/v1/keys/{alias}:generateDataKey', { ...alias, body: { context, includePlaintext: false } })
    assert.equal(wrappedOnly.response.status, 200, JSON.stringify(wrappedOnly.error))
    assert.equal(wrappedOnly.data!.plaintext, undefined)
    assert.equal('plaintext' in wrappedOnly.data!, false)
    assert.equal(wrappedOnly.data!.keyVersion, keyVersion)

    const large = await client.POST('/v1/keys/{alias}:generateDataKey', { ...alias, body: { includePlaintext: true, bytes: 64 } })
    assert.equal(large.response.status, 200, JSON.stringify(large.error))
    assert.equal(Buffer.from(large.data!.plaintext!, 'base64').length, 64)
  })

  test('wrap, then unwrap with the same context returns the same plaintext', async () => {
    const plaintext = randomBytes(16).toString('base64')
    const wrap = await client.POST('/v1/keys/{alias}:wrap', { ...alias, body: { plaintext, context } })
    assert.equal(wrap.response.status, 200, JSON.stringify(wrap.error))
    wrapped = { ...wrap.data!, plaintext }

    for (const key of [wrapped, dataKey]) {
      const unwrap = await client.POST('/v1/keys/{alias}:unwrap', { ...alias, body: { wrappedKey: key.wrappedKey, context } })
      assert.equal(unwrap.response.status, 200, JSON.stringify(unwrap.error))
      assert.deepEqual(unwrap.data, { plaintext: key.plaintext, keyVersion: key.keyVersion, primary: true })
    }
  })

  test('unwrap with a wrong context is a typed 422 cannot_unwrap; no token is a typed 401', async () => {
    const wrong = await client.POST('/v1/keys/{alias}:unwrap', { ...alias, body: { wrappedKey: wrapped.wrappedKey, context: { tenant: 'other' } } })
    assert.equal(wrong.response.status, 422)
    assert.equal(wrong.data, undefined)
    assert.equal(wrong.response.headers.get('content-type')?.split(';')[0], 'application/problem+json')
    const problem: Problem = wrong.error!
    assert.equal(problem.code, 'cannot_unwrap')
    assert.equal(problem.status, 422)
    assert.equal(problem.type, 'urn:keywrap:problem:cannot_unwrap')

    const unauthenticated = await anonymous.GET('/v1/keys')
    assert.equal(unauthenticated.response.status, 401)
    assert.equal(unauthenticated.error?.code, 'unauthenticated')
    assert.match(unauthenticated.response.headers.get('www-authenticate') ?? '', /^Bearer /)
  })

  test('rewrap under the primary version is a no-op', async () => {
    const rewrap = await client.POST('/v1/keys/{alias}:rewrap', { ...alias, body: { wrappedKey: wrapped.wrappedKey, context } })
    assert.equal(rewrap.response.status, 200, JSON.stringify(rewrap.error))
    assert.deepEqual(rewrap.data, { wrappedKey: wrapped.wrappedKey, keyVersion: wrapped.keyVersion, rewrapped: false })
  })

  test('after rotating the local key: getKey, unwrap, rewrap, batchUnwrap and batchRewrap', async () => {
    await new KeyringFile(t.home).rotate('default')
    await t.deps.registry.refreshAll()

    const key = await client.GET('/v1/keys/{alias}', alias)
    assert.equal(key.response.status, 200, JSON.stringify(key.error))
    assert.equal(key.data!.primaryVersion, 2)
    assert.deepEqual(
      key.data!.versions.map(({ version, state }) => ({ version, state })),
      [
        { version: 1, state: 'ENABLED' },
        { version: 2, state: 'ENABLED' },
      ],
    )
    const primaryName = key.data!.versions.find((version) => version.version === 2)!.name
    assert.notEqual(primaryName, wrapped.keyVersion)

    const old = await client.POST('/v1/keys/{alias}:unwrap', { ...alias, body: { wrappedKey: wrapped.wrappedKey, context } })
    assert.equal(old.response.status, 200, JSON.stringify(old.error))
    assert.deepEqual(old.data, { plaintext: wrapped.plaintext, keyVersion: wrapped.keyVersion, primary: false })

    const rewrap = await client.POST('/v1/keys/{alias}:rewrap', { ...alias, body: { wrappedKey: wrapped.wrappedKey, context } })
    assert.equal(rewrap.response.status, 200, JSON.stringify(rewrap.error))
    const rewrapped = rewrap.data!
    assert.equal(rewrapped.rewrapped, true)
    assert.equal(rewrapped.keyVersion, primaryName)
    assert.notEqual(rewrapped.wrappedKey, wrapped.wrappedKey)

    const fresh = await client.POST('/v1/keys/{alias}:unwrap', { ...alias, body: { wrappedKey: rewrapped.wrappedKey, context } })
    assert.equal(fresh.response.status, 200, JSON.stringify(fresh.error))
    assert.deepEqual(fresh.data, { plaintext: wrapped.plaintext, keyVersion: primaryName, primary: true })

    const items = [
      { wrappedKey: wrapped.wrappedKey, context }, // good, under version 1
      { wrappedKey: wrapped.wrappedKey, context: { tenant: 'other' } }, // wrong context
      { wrappedKey: rewrapped.wrappedKey, context }, // good, under the primary
      { wrappedKey: dataKey.wrappedKey }, // context missing
    ]

    const batchUnwrap = await client.POST('/v1/keys/{alias}:batchUnwrap', { ...alias, body: { items } })
    assert.equal(batchUnwrap.response.status, 200, JSON.stringify(batchUnwrap.error))
    const unwrapped = batchUnwrap.data!.results
    assert.equal(unwrapped.length, items.length)
    const [u0, u1, u2, u3] = unwrapped
    assert.ok(u0 && !('error' in u0), JSON.stringify(u0))
    assert.deepEqual(u0, { plaintext: wrapped.plaintext, keyVersion: wrapped.keyVersion, primary: false })
    assert.ok(u1 && 'error' in u1, JSON.stringify(u1))
    assert.equal(u1.error.code, 'cannot_unwrap')
    assert.ok(u2 && !('error' in u2), JSON.stringify(u2))
    assert.deepEqual(u2, { plaintext: wrapped.plaintext, keyVersion: primaryName, primary: true })
    assert.ok(u3 && 'error' in u3, JSON.stringify(u3))
    assert.equal(u3.error.code, 'cannot_unwrap')

    const batchRewrap = await client.POST('/v1/keys/{alias}:batchRewrap', { ...alias, body: { items } })
    assert.equal(batchRewrap.response.status, 200, JSON.stringify(batchRewrap.error))
    const results = batchRewrap.data!.results
    assert.equal(results.length, items.length)
    const [r0, r1, r2, r3] = results
    assert.ok(r0 && !('error' in r0), JSON.stringify(r0))
    assert.equal(r0.rewrapped, true)
    assert.equal(r0.keyVersion, primaryName)
    assert.ok(r1 && 'error' in r1, JSON.stringify(r1))
    assert.equal(r1.error.code, 'cannot_unwrap')
    assert.ok(r2 && !('error' in r2), JSON.stringify(r2))
    assert.deepEqual(r2, { wrappedKey: rewrapped.wrappedKey, keyVersion: primaryName, rewrapped: false })
    assert.ok(r3 && 'error' in r3, JSON.stringify(r3))
    assert.equal(r3.error.code, 'cannot_unwrap')

    // What batchRewrap made unwraps, under the primary, to the same key.
    const again = await client.POST('/v1/keys/{alias}:unwrap', { ...alias, body: { wrappedKey: r0.wrappedKey, context } })
    assert.deepEqual(again.data, { plaintext: wrapped.plaintext, keyVersion: primaryName, primary: true })
  })

  test('every operation of openapi.yaml was exercised through the typed client', () => {
    const expected = [...contract.operations.values()].map((operation) => `${operation.method} ${operation.path}`).sort()
    assert.deepEqual([...exercised].sort(), expected)
  })
})
