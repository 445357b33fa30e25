/**
 * Purges stay purged: a generation record carries a counter that only moves forward and is MAC'd under
 * the epoch's keys. Whoever writes Redis without the epoch secret can neither forge one nor, by putting
 * an old one back, make purged entries hits again for an instance that saw the newer one.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { redisUrlForTests, testKeyPrefix } from '../support/redis-server.js'
import { closeInstances, counter, dekKey, keysUnder, manualClock, newDek, rawClient, startInstance } from './cache-fixture.js'
import { CountingProvider } from './counting-provider.js'
import { recordingLogger } from '../support/recording-logger.js'

let url: string
let raw: Redis

before(async () => {
  url = await redisUrlForTests()
  raw = await rawClient(url)
})

after(async () => {
  await closeInstances()
  await raw.quit()
})

/** The counter of a generation record (1 | uint64 counter | token | MAC). */
const counterOf = (value: Buffer) => Number(value.readBigUInt64BE(1))

async function fleet(name: string) {
  const clock = manualClock()
  const keyPrefix = testKeyPrefix(name)
  const kek = new CountingProvider()
  const log = recordingLogger()
  const options = { url, keyPrefix, now: clock.now, generationMemoMs: 1000 }
  const a = await startInstance({ ...options, kek })
  const b = await startInstance({ ...options, kek: new CountingProvider(kek.secret), logger: log, l1Entries: 0 })
  return { clock, keyPrefix, kek, a, b, log, options }
}

test('an old generation put back after a purge is refused by an instance that saw the purge, logged once, and replaced', async () => {
  const { clock, keyPrefix, a, b, log } = await fleet('replay')
  const key = dekKey('orders')
  await a.cache.set(key, newDek())
  assert.equal((await b.cache.get(key))?.level, 'l2')
  const [generation] = await keysUnder(raw, `${keyPrefix}gen:`)
  const old = (await raw.getBuffer(generation!))!
  assert.equal(counterOf(old), 1)

  await a.cache.purge('orders')
  clock.advance(1000)
  assert.equal(await b.cache.get(key), undefined, 'purged')
  const purged = (await raw.getBuffer(generation!))!
  assert.equal(counterOf(purged), 2)

  // The attack: whoever can write Redis restores the generation from before the purge.
  await raw.set(generation!, old, 'PX', 60_000)
  for (let i = 0; i < 5; i++) {
    clock.advance(1000)
    assert.equal(await b.cache.get(key), undefined, 'the purged entry stays a miss')
  }
  assert.equal(await a.cache.get(key), undefined)
  const replaced = (await raw.getBuffer(generation!))!
  assert.ok(counterOf(replaced) >= 3, 'replaced by a generation above every counter seen')
  assert.ok(!replaced.equals(old) && !replaced.equals(purged))
  const refusals = log.lines.filter((line) => line.level === 'warn' && /generation record/.test(line.message))
  assert.equal(refusals.length, 1, 'logged once')
  assert.match(JSON.stringify(refusals[0]!.details), /lower than 2/)
  assert.ok((await counter(b.metrics.redisErrors, { operation: 'generation_refused' })) >= 1)

  // New entries are shared again under the new generation.
  await a.cache.set(key, newDek())
  clock.advance(1000)
  assert.equal((await b.cache.get(key))?.level, 'l2')
})

test('a forged or moved generation record is refused: a Redis writer without the epoch secret cannot make one', async () => {
  const { clock, keyPrefix, a, b } = await fleet('forged')
  const key = dekKey('orders')
  await a.cache.set(key, newDek())
  const [orders] = (await keysUnder(raw, `${keyPrefix}gen:`)) as [string]
  await a.cache.set(dekKey('billing'), newDek())
  const billing = (await keysUnder(raw, `${keyPrefix}gen:`)).find((name) => name !== orders)!
  const genuine = (await raw.getBuffer(orders))!
  const bumped = Buffer.from(genuine)
  bumped.writeBigUInt64BE(99n, 1)
  const forgeries: [string, Buffer][] = [
    ['the counter raised', bumped],
    ['random bytes', randomBytes(genuine.length)],
    ['the other alias’s record', (await raw.getBuffer(billing))!],
    ['the old 16-byte format', randomBytes(16)],
  ]
  for (const [what, forged] of forgeries) {
    await a.cache.set(key, newDek())
    clock.advance(1000)
    assert.equal((await b.cache.get(key))?.level, 'l2', `before: ${what}`)
    await raw.set(orders, forged, 'PX', 60_000)
    clock.advance(1000)
    assert.equal(await b.cache.get(key), undefined, what)
    assert.ok(!(await raw.getBuffer(orders))!.equals(forged), `${what}: replaced`)
  }
})

test('concurrent purges from several instances each move the counter forward; none is lost', async () => {
  const { clock, keyPrefix, kek, a, b, options } = await fleet('concurrent')
  const c = await startInstance({ ...options, kek: new CountingProvider(kek.secret) })
  const key = dekKey('orders')
  await a.cache.set(key, newDek())
  const [generation] = await keysUnder(raw, `${keyPrefix}gen:`)
  await Promise.all([a, b, c, a, b, c].map((instance) => instance.cache.purge('orders')))
  assert.equal(counterOf((await raw.getBuffer(generation!))!), 7)
  clock.advance(1000)
  for (const instance of [a, b, c]) assert.equal(await instance.cache.get(key), undefined)
})

test('the limit: an instance that never saw the newer generation cannot tell an old one put back', async () => {
  const { clock, keyPrefix, kek, a, options } = await fleet('fresh')
  const key = dekKey('orders')
  await a.cache.set(key, newDek())
  const [generation] = await keysUnder(raw, `${keyPrefix}gen:`)
  const old = (await raw.getBuffer(generation!))!
  await a.cache.purge('orders')
  await raw.set(generation!, old, 'PX', 60_000)
  // Started after the rollback, and before any instance that saw the purge re-read the generation.
  const late = await startInstance({ ...options, kek: new CountingProvider(kek.secret), l1Entries: 0 })
  assert.equal((await late.cache.get(key))?.level, 'l2', 'served: it has seen nothing newer')
  // As soon as one that saw the purge reads the generation, the rollback ends for everyone.
  clock.advance(1000)
  assert.equal(await a.cache.get(key), undefined)
  clock.advance(1000)
  assert.equal(await late.cache.get(key), undefined)
})
