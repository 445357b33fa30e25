import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { redisUrlForTests, testKeyPrefix } from '../support/redis-server.js'
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
