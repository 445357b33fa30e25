import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { redisUrlForTests, startPrivateRedis, testKeyPrefix } from '../support/redis-server.js'
import { startTestApp } from '../support/test-app.js'

test('each principal gets its own budget; over it: 429 problem+json with Retry-After; public routes are not limited', async () => {
  const t = await startTestApp({ env: { KEYWRAP_RATE_LIMIT: '3', KEYWRAP_RATE_LIMIT_WINDOW_SECONDS: '60' } })
  try {
    const alice = await t.token('alice')
    for (let i = 0; i < 3; i++) assert.equal((await t.call('generateDataKey', { token: alice, body: {} })).statusCode, 200)
    const limited = await t.call('generateDataKey', { token: alice, body: {} })
    assert.equal(limited.statusCode, 429)
    assert.equal(limited.json.code, 'rate_limited')
    assert.ok(Number(limited.headers['retry-after']) >= 1)
    await new Promise((resolve) => setImmediate(resolve))
    const entry = t.audit.entries.at(-1)!
    assert.deepEqual([entry.operation, entry.outcome, entry.errorCode, entry.principal], ['generateDataKey', 'denied', 'rate_limited', 'alice'])
    assert.equal(t.audit.entries.length, 4, 'three allowed accesses and one refused one')
    assert.equal((await t.call('generateDataKey', { token: await t.token('bob'), body: {} })).statusCode, 200)
    for (let i = 0; i < 5; i++) assert.equal((await t.call('getHealth', { token: null })).statusCode, 200)
  } finally {
    await t.close()
  }
})

test('off by default in development', async () => {
  const t = await startTestApp()
  try {
    const token = await t.token('carol')
    for (let i = 0; i < 20; i++) assert.equal((await t.call('listKeys', { token })).statusCode, 200)
  } finally {
    await t.close()
  }
})

test('with Redis, instances share one budget per principal', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-rate-'))
  const env = { KEYWRAP_RATE_LIMIT: '4', REDIS_URL: await redisUrlForTests(), KEYWRAP_REDIS_KEY_PREFIX: testKeyPrefix('rate') }
  const a = await startTestApp({ home, env })
  const b = await startTestApp({ home, env })
  try {
    const principal = `dave-${Date.now()}`
    const token = await a.token(principal)
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) statuses.push((await a.call('listKeys', { token })).statusCode, (await b.call('listKeys', { token })).statusCode)
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429])
  } finally {
    await a.close()
    await b.close()
  }
})

test('Redis paused: the limit still holds, counted per instance, and requests stop waiting on Redis after a few', async (t) => {
  const redis = await startPrivateRedis()
  t.after(() => redis.stop())
  const app = await startTestApp({ env: { KEYWRAP_RATE_LIMIT: '3', REDIS_URL: redis.url, KEYWRAP_REDIS_KEY_PREFIX: testKeyPrefix('rate') } })
  try {
    const token = await app.token(`erin-${Date.now()}`)
    assert.equal((await app.call('listKeys', { token: await app.token('warm-up') })).statusCode, 200)
    const resumed = redis.pause()
    const statuses: number[] = []
    const durations: number[] = []
    for (let i = 0; i < 12; i++) {
      const started = performance.now()
      statuses.push((await app.call('listKeys', { token })).statusCode)
      durations.push(performance.now() - started)
    }
    redis.resume()
    await resumed
    // Counted in this process while Redis cannot answer: three allowed, then refused.
    assert.deepEqual(statuses, [200, 200, 200, ...Array<number>(9).fill(429)])
    // Each of the first few waits out the command timeout (75 ms); then the breaker opens.
    const waited = durations.filter((ms) => ms > 50).length
    assert.ok(waited <= 5, `requests kept waiting on Redis: ${durations.map(Math.round)}`)
  } finally {
    await app.close()
  }
})

test('a batch is charged its items; one larger than what is left is refused whole, in one audit entry', async () => {
  const t = await startTestApp({ env: { KEYWRAP_RATE_LIMIT: '10' } })
  try {
    const token = await t.token('frank')
    const generated = await t.call('generateDataKey', { token, body: {} })
    const items = (n: number) => Array.from({ length: n }, () => ({ wrappedKey: generated.json.wrappedKey }))
    assert.equal((await t.call('batchUnwrap', { token, body: { items: items(6) } })).statusCode, 200, 'cost 6: 7 of 10 used')
    const entriesBefore = t.audit.entries.length
    const refused = await t.call('batchUnwrap', { token, body: { items: items(4) } })
    assert.equal(refused.statusCode, 429)
    assert.match(refused.json.detail, /batch of 4 items/)
    await new Promise((resolve) => setImmediate(resolve))
    const added = t.audit.entries.slice(entriesBefore)
    assert.equal(added.length, 1)
    assert.deepEqual(
      [added[0]!.operation, added[0]!.outcome, added[0]!.errorCode, added[0]!.batchSize, added[0]!.batchIndex],
      ['unwrap', 'denied', 'rate_limited', 4, undefined],
    )
    assert.equal((await t.call('batchUnwrap', { token, body: { items: items(3) } })).statusCode, 200, 'the refused batch charged nothing')
    assert.equal((await t.call('unwrap', { token, body: { wrappedKey: generated.json.wrappedKey } })).statusCode, 429)
  } finally {
    await t.close()
  }
})
