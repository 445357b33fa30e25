/**
 * Two app instances sharing one Redis, as a fleet on Cloud Run does: a DEK generated on one is an L2
 * hit on the other, and Redis trouble never fails a request.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { redisUrlForTests, startPrivateRedis, testKeyPrefix, type PrivateRedis } from '../support/redis-server.js'
import { startTestApp, type TestApp } from '../support/test-app.js'

let a: TestApp
let b: TestApp
let redisUrl: string
let prefix: string

function countDecrypts(app: TestApp): () => number {
  const provider = app.deps.registry.get('default')!
  const decrypt = provider.decrypt
  let calls = 0
  provider.decrypt = (...args) => (calls++, decrypt.apply(provider, args))
  return () => calls
}

before(async () => {
  redisUrl = await redisUrlForTests()
  prefix = testKeyPrefix('fleet')
  const home = await mkdtemp(join(tmpdir(), 'keywrap-fleet-'))
  // Not a test of Redis deadlines: a loaded machine must not turn a slow SET into an L2 miss (the 75 ms default).
  const env = { REDIS_URL: redisUrl, KEYWRAP_REDIS_KEY_PREFIX: prefix, KEYWRAP_REDIS_COMMAND_TIMEOUT_MS: '5000' }
  a = await startTestApp({ home, env })
  b = await startTestApp({ home, env })
})
after(async () => {
  await a.close()
  await b.close()
  const redis = new Redis(redisUrl)
  const keys = await redis.keys(`${prefix}*`)
  if (keys.length > 0) await redis.del(...keys)
  redis.disconnect()
})

test('a DEK generated on instance A is an L2 hit on instance B: no provider call for the DEK', async () => {
  const decryptsOnB = countDecrypts(b)
  // B's first use of the cache unwraps this epoch's cache keys: the one provider call per instance per epoch.
  await b.call('generateDataKey', { body: {} })
  const afterWarmUp = decryptsOnB()
  assert.ok(afterWarmUp <= 1)
  const generated = await a.call('generateDataKey', { body: { context: { tenant: 'acme' } } })
  const unwrapped = await b.call('unwrap', { body: { wrappedKey: generated.json.wrappedKey, context: { tenant: 'acme' } } })
  assert.equal(unwrapped.json.plaintext, generated.json.plaintext)
  assert.equal(b.audit.entries.at(-1)!.cacheLevel, 'l2')
  const again = await b.call('unwrap', { body: { wrappedKey: generated.json.wrappedKey, context: { tenant: 'acme' } } })
  assert.equal(again.json.plaintext, generated.json.plaintext)
  assert.equal(b.audit.entries.at(-1)!.cacheLevel, 'l1')
  assert.equal(decryptsOnB(), afterWarmUp)
})

test('Redis holds no DEK, alias or wrapped key, and every key expires', async () => {
  const generated = await a.call('generateDataKey', { body: {} })
  const redis = new Redis(redisUrl)
  try {
    const names = await redis.keys(`${prefix}*`)
    assert.ok(names.length > 0)
    const dek = Buffer.from(generated.json.plaintext, 'base64')
    for (const name of names) {
      const value = await redis.getBuffer(name)
      const text = `${name} ${value?.toString('latin1')} ${value?.toString('base64')} ${value?.toString('hex')}`
      for (const secret of [
        dek.toString('latin1'),
        generated.json.plaintext,
        dek.toString('hex'),
        dek.toString('base64url'),
        generated.json.wrappedKey,
        'default:',
        'tenant',
      ]) {
        assert.ok(!text.includes(secret), `${name} reveals ${secret.slice(0, 8)}…`)
      }
      assert.ok((await redis.pttl(name)) > 0, `${name} has no TTL`)
    }
  } finally {
    redis.disconnect()
  }
})

test('a purge on A makes B go back to the provider', async () => {
  const generated = await a.call('generateDataKey', { body: {} })
  await b.call('unwrap', { body: { wrappedKey: generated.json.wrappedKey } })
  await a.call('purgeCache', {})
  await new Promise((resolve) => setTimeout(resolve, 1100))
  await b.call('unwrap', { body: { wrappedKey: generated.json.wrappedKey } })
  assert.equal(b.audit.entries.at(-1)!.cacheLevel, 'provider')
})

test('with Redis killed, every request is still answered, and /readyz says the cache is degraded', async () => {
  let privateRedis: PrivateRedis | undefined = await startPrivateRedis()
  const app = await startTestApp({ env: { REDIS_URL: privateRedis.url } })
  try {
    const generated = await app.call('generateDataKey', { body: {} })
    await privateRedis.kill()
    privateRedis = undefined
    for (let i = 0; i < 20; i++) {
      const started = performance.now()
      const response = await app.call('unwrap', { body: { wrappedKey: generated.json.wrappedKey } })
      assert.equal(response.statusCode, 200)
      assert.ok(performance.now() - started < 500)
    }
    const fresh = await app.call('generateDataKey', { body: {} })
    assert.equal((await app.call('unwrap', { body: { wrappedKey: fresh.json.wrappedKey } })).statusCode, 200)
    const readiness = await app.call('getReadiness', { token: null })
    assert.equal(readiness.statusCode, 200)
    assert.equal(readiness.json.cache, 'degraded')
  } finally {
    await app.close()
    await privateRedis?.stop()
  }
})
