import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { CircuitBreaker } from '../../src/cache/circuit-breaker.js'
import type { KeywrapError } from '../../src/errors.js'
import { freePort, startPrivateRedis } from '../support/redis-server.js'
import { closeInstances, counter, dekKey, keysUnder, manualClock, newDek, rawClient, ready, sleep, startInstance, type Instance } from './cache-fixture.js'
import { CountingProvider } from './counting-provider.js'

const COMMAND_TIMEOUT_MS = 75
/** What a call may take beyond the command timeout: event-loop and scheduling noise, on a loaded 2-core machine (163 ms was seen). Without the deadline a call to a paused Redis never returns. */
const SLACK_MS = 150

after(() => closeInstances())

/** Runs `call` and fails unless it finishes within the command timeout and slack; returns its duration. */
async function timed<T>(what: string, call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now()
  const value = await call()
  const ms = performance.now() - started
  assert.ok(ms <= COMMAND_TIMEOUT_MS + SLACK_MS, `${what} took ${ms.toFixed(1)} ms`)
  return { value, ms }
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`)
    await sleep(25)
  }
}

/** Gets and sets of fresh and cached keys; none may throw or outlast the command timeout. */
async function exercise(instances: Instance[], keys: ReturnType<typeof dekKey>[], rounds: number): Promise<number[]> {
  const durations: number[] = []
  for (let round = 0; round < rounds; round++) {
    for (const instance of instances) {
      const key = keys[round % keys.length]!
      durations.push((await timed('get', () => instance.cache.get(key))).ms)
      durations.push((await timed('set', () => instance.cache.set(dekKey(key.alias), newDek()))).ms)
    }
  }
  return durations
}

test('Redis paused (SIGSTOP): every call returns within the command timeout, the breaker opens, L1 still serves; hits resume', async (t) => {
  const redis = await startPrivateRedis()
  t.after(() => redis.stop())
  const options = { url: redis.url, keyPrefix: 'kw:', connection: { url: redis.url, commandTimeoutMs: COMMAND_TIMEOUT_MS } }
  const shared = await startInstance({ ...options, l1Entries: 0 })
  const local = await startInstance({ ...options })
  const keys = Array.from({ length: 5 }, () => dekKey('orders'))
  for (const key of keys) await local.cache.set(key, newDek())
  for (const key of keys) assert.equal((await shared.cache.get(key))?.level, 'l2')

  const resumed = redis.pause()
  const durations = await exercise([shared, local], keys, 20)
  assert.equal(shared.cache.status(), 'degraded')
  assert.equal(local.cache.status(), 'degraded')
  const waited = durations.filter((ms) => ms > COMMAND_TIMEOUT_MS / 2).length
  assert.ok(waited <= 10, `after 5 timeouts per instance the open breaker spares calls the wait: ${durations.map(Math.round)}`)
  assert.ok((await counter(shared.metrics.redisErrors)) >= 5)
  assert.equal(await shared.cache.get(keys[0]!), undefined)
  assert.equal((await local.cache.get(keys[0]!))?.level, 'l1', 'within the offline grace, L1 still serves')
  await assert.rejects(local.cache.purge('orders'), (error: KeywrapError) => error.status === 503)

  redis.resume()
  await resumed
  await eventually('L2 hits again', async () => (await shared.cache.get(keys[1]!))?.level === 'l2')
  assert.equal(shared.cache.status(), 'ok')
})

test('Redis killed mid-run: calls fail fast and never throw; restarted empty, the fleet restores its epoch record and hits resume', async (t) => {
  const redis = await startPrivateRedis()
  t.after(() => redis.stop())
  const kek = new CountingProvider()
  const bKek = new CountingProvider(kek.secret)
  const connection = { url: redis.url, commandTimeoutMs: COMMAND_TIMEOUT_MS, maxReconnectDelayMs: 200 }
  const options = { url: redis.url, keyPrefix: 'kw:', breaker: { openMs: 300 }, connection, generationMemoMs: 100 }
  const a = await startInstance({ ...options, kek })
  const b = await startInstance({ ...options, kek: bKek, l1Entries: 0 })
  const keys = Array.from({ length: 5 }, () => dekKey('orders'))
  for (const key of keys) await a.cache.set(key, newDek())
  assert.equal((await b.cache.get(keys[0]!))?.level, 'l2')

  const running = exercise([a, b], keys, 40)
  await sleep(5)
  await redis.kill()
  await running
  await exercise([a, b], keys, 20)
  assert.equal(b.cache.status(), 'degraded')
  assert.equal(await b.cache.get(keys[0]!), undefined)

  await redis.restart()
  await ready(b.redis)
  await eventually('set through A, an L2 hit on B', async () => {
    const key = dekKey('orders')
    await a.cache.set(key, newDek())
    return (await b.cache.get(key))?.level === 'l2'
  })
  assert.deepEqual([kek.calls, bKek.calls], [1, 1], 'the epoch record came back from memory, not from a new secret')
  const raw = await rawClient(redis.url)
  t.after(() => raw.quit())
  assert.equal((await keysUnder(raw, 'kw:epoch:')).length, 1)
  assert.equal(b.cache.status(), 'ok')
})

test('no Redis at all: misses at once, degraded, purge reports 503 after dropping L1', async () => {
  const port = await freePort()
  const url = `redis://127.0.0.1:${port}`
  const a = await startInstance({ url, connection: { url, commandTimeoutMs: COMMAND_TIMEOUT_MS }, waitReady: false })
  await sleep(50)
  const key = dekKey('orders')
  for (let i = 0; i < 20; i++) {
    const { ms } = await timed('set', () => a.cache.set(key, newDek()))
    // "At once": well short of the command timeout it would otherwise wait for. A bound of a few
    // milliseconds failed once in CI on a loaded machine, with the suite running two files at a time.
    assert.ok(ms < COMMAND_TIMEOUT_MS / 2, `set took ${ms.toFixed(1)} ms without Redis`)
    assert.equal((await timed('get', () => a.cache.get(key))).value, undefined)
  }
  assert.equal(a.cache.status(), 'degraded')
  await assert.rejects(a.cache.purge('orders'), (error: KeywrapError) => error.status === 503 && error.retryAfterSeconds === 1)
  assert.equal(a.kek instanceof CountingProvider && a.kek.calls, 0, 'no provider call without Redis')
})

test('offline grace: an instance cut off from Redis stops serving L1 once the grace is over', async (t) => {
  const redis = await startPrivateRedis()
  t.after(() => redis.stop())
  const clock = manualClock()
  const connection = { url: redis.url, commandTimeoutMs: COMMAND_TIMEOUT_MS }
  const a = await startInstance({ url: redis.url, connection, now: clock.now, generationMemoMs: 1000, offlineGraceMs: 5000 })
  const key = dekKey('orders')
  await a.cache.set(key, newDek())
  await redis.kill()
  clock.advance(4999)
  assert.equal((await a.cache.get(key))?.level, 'l1')
  clock.advance(1)
  assert.equal(await a.cache.get(key), undefined)
})

test('circuit breaker: opens after consecutive failures, lets one trial through when half-open, closes on success', () => {
  const clock = manualClock(0)
  const breaker = new CircuitBreaker({ failureThreshold: 3, openMs: 1000, now: clock.now })
  breaker.failed()
  breaker.failed()
  breaker.succeeded()
  breaker.failed()
  breaker.failed()
  assert.equal(breaker.state(), 'closed', 'the count is of consecutive failures')
  breaker.failed()
  assert.equal(breaker.state(), 'open')
  assert.equal(breaker.allows(), false)
  clock.advance(1000)
  assert.equal(breaker.state(), 'half-open')
  assert.equal(breaker.allows(), true)
  assert.equal(breaker.allows(), false, 'one trial at a time')
  breaker.failed()
  assert.equal(breaker.state(), 'open', 'a failed trial reopens it')
  clock.advance(1000)
  assert.equal(breaker.allows(), true)
  breaker.succeeded()
  assert.equal(breaker.state(), 'closed')
  assert.equal(breaker.allows(), true)
})

test('Redis paused: concurrent calls behind an auto-pipeline in flight still return within the command timeout', async (t) => {
  const redis = await startPrivateRedis()
  t.after(() => redis.stop())
  const options = { url: redis.url, keyPrefix: 'kw:', connection: { url: redis.url, commandTimeoutMs: COMMAND_TIMEOUT_MS } }
  const shared = await startInstance({ ...options, l1Entries: 0 })
  const keys = Array.from({ length: 4 }, () => dekKey('orders'))
  for (const key of keys) await shared.cache.set(key, newDek())
  for (const key of keys) assert.equal((await shared.cache.get(key))?.level, 'l2')

  const resumed = redis.pause()
  // Issued while earlier commands are still in flight: each waits for the pipeline ahead of it.
  const calls = [0, 10, 60, 90].map(async (delayMs, index) => {
    await sleep(delayMs)
    return timed(`get issued at ${delayMs} ms`, () => shared.cache.get(keys[index]!))
  })
  for (const { value } of await Promise.all(calls)) assert.equal(value, undefined)
  redis.resume()
  await resumed
})
