/**
 * `npm start` with a gcp-kms:// key and KMS_EMULATOR_HOST pointing at the loopback Cloud KMS stand-in:
 * the real client over gRPC, rotation and disabled versions seen within one refresh, and a graceful
 * SIGTERM while requests wait on a slow KMS.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { kmsKeyEnvironment } from './support/kms-key-environment.js'
import { KmsStandIn, type RunningKmsStandIn } from './support/kms-stand-in.js'
import { post, runCli, startServer } from './support/processes.js'

const KEY = 'projects/test/locations/europe-west1/keyRings/keywrap/cryptoKeys/payments'

describe('npm start against Cloud KMS (the stand-in)', () => {
  const kms = new KmsStandIn()
  let running: RunningKmsStandIn
  let env: Record<string, string>
  let token: string

  before(async () => {
    ;({ running, env } = await kmsKeyEnvironment(kms, KEY, 'payments'))
    token = (await runCli(['token', '--sub', 'ops'], env)).stdout.trim()
  })
  after(() => running.close())

  test('generate → unwrap → rotate → rewrap → disable, with one KMS call per uncached operation', async () => {
    const server = await startServer(env)
    try {
      kms.resetCounters()
      const generated = await post(server, '/v1/keys/payments:generateDataKey', token, { context: { order: '42' } })
      assert.equal(generated.status, 200, JSON.stringify(generated.json))
      assert.equal(generated.json.keyVersion, `${KEY}/cryptoKeyVersions/1`)
      const unwrapped = await post(server, '/v1/keys/payments:unwrap', token, { wrappedKey: generated.json.wrappedKey, context: { order: '42' } })
      assert.deepEqual(unwrapped.json, { plaintext: generated.json.plaintext, keyVersion: `${KEY}/cryptoKeyVersions/1`, primary: true })
      assert.deepEqual([kms.calls.Encrypt, kms.calls.Decrypt], [1, 0], 'generate writes through to the cache; the unwrap is a hit')
      const wrongContext = await post(server, '/v1/keys/payments:unwrap', token, { wrappedKey: generated.json.wrappedKey, context: { order: '43' } })
      assert.equal(wrongContext.json.code, 'cannot_unwrap')

      kms.rotate(KEY)
      await sleep(1500)
      const rewrapped = await post(server, '/v1/keys/payments:rewrap', token, { wrappedKey: generated.json.wrappedKey, context: { order: '42' } })
      assert.equal(rewrapped.json.rewrapped, true)
      assert.equal(rewrapped.json.keyVersion, `${KEY}/cryptoKeyVersions/2`)
      const description = await fetch(`${server.baseUrl}/v1/keys/payments`, { headers: { authorization: `Bearer ${token}` } })
      const key = (await description.json()) as any
      assert.equal(key.primaryVersion, 2)
      assert.equal(key.attributes.protectionLevel, 'SOFTWARE')

      kms.setState(KEY, 1, 'DISABLED')
      await sleep(1500)
      const refused = await post(server, '/v1/keys/payments:unwrap', token, { wrappedKey: generated.json.wrappedKey, context: { order: '42' } })
      assert.equal(refused.status, 409)
      assert.equal(refused.json.code, 'key_version_not_enabled')
      assert.doesNotMatch(server.stderr() + server.stdout(), /MetadataLookupWarning/)
    } finally {
      await server.stop()
    }
  })

  test('a relabelled version is refused, and an instance that has not refreshed yet still unwraps keys of a new version', async () => {
    const fresh = await startServer(env)
    const stale = await startServer({ ...env, KEYWRAP_KEY_REFRESH_SECONDS: '3600' })
    try {
      const before = await post(fresh, '/v1/keys/payments:generateDataKey', token, {})
      const version = kms.rotate(KEY)
      await sleep(1500)
      const after = await post(fresh, '/v1/keys/payments:generateDataKey', token, {})
      assert.equal(after.json.keyVersion, `${KEY}/cryptoKeyVersions/${version}`)
      const onStale = await post(stale, '/v1/keys/payments:unwrap', token, { wrappedKey: after.json.wrappedKey })
      assert.equal(onStale.status, 200, JSON.stringify(onStale.json))
      assert.equal(onStale.json.plaintext, after.json.plaintext)
      // The version a wrapped key claims is authenticated: moved to the new version, the old key does not unwrap.
      const relabelled = before.json.wrappedKey.replace(/^kw1\.\d+\./, `kw1.${version}.`)
      const refused = await post(fresh, '/v1/keys/payments:unwrap', token, { wrappedKey: relabelled })
      assert.equal(refused.status, 422)
      assert.equal(refused.json.code, 'cannot_unwrap')
    } finally {
      await fresh.stop()
      await stale.stop()
    }
  })

  test('SIGTERM with 20 requests waiting on a slow KMS: all 20 answered, exit 0 within 9 s', async () => {
    const server = await startServer({ ...env, KEYWRAP_CACHE_MAX_ENTRIES: '0' })
    try {
      const generated = await post(server, '/v1/keys/payments:generateDataKey', token, {})
      kms.setFaults({ latencyMs: 1500, methods: ['Decrypt'] })
      const inFlight = Array.from({ length: 20 }, () => post(server, '/v1/keys/payments:unwrap', token, { wrappedKey: generated.json.wrappedKey }))
      await sleep(300)
      const stopping = server.stop('SIGTERM')
      const answers = await Promise.all(inFlight)
      assert.deepEqual(
        answers.map((a) => a.status),
        Array(20).fill(200),
      )
      assert.ok(answers.every((a) => a.json.plaintext === generated.json.plaintext))
      const { code, elapsedMs } = await stopping
      assert.equal(code, 0)
      assert.ok(elapsedMs < 9000, `exit took ${elapsedMs} ms`)
    } finally {
      kms.clearFaults()
      await server.stop()
    }
  })
})
