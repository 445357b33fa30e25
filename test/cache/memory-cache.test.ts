import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryDekCache } from '../../src/cache/memory-cache.js'
import { SingleFlight } from '../../src/cache/single-flight.js'
import { encodeAad } from '../../src/crypto/context.js'

const key = (alias: string, wrappedKey: string, context = {}) => ({ alias, wrappedKey, aad: encodeAad(alias, 1, context) })
const dek = { plaintext: Buffer.alloc(32, 1), version: 1 }

test('an entry is found only by its alias, wrapped key and context together', async () => {
  const cache = new MemoryDekCache({ maxEntries: 10, ttlSeconds: 60 })
  await cache.set(key('a', 'w', { t: '1' }), dek)
  assert.deepEqual(await cache.get(key('a', 'w', { t: '1' })), { ...dek, level: 'l1' })
  assert.equal(await cache.get(key('a', 'w', { t: '2' })), undefined)
  assert.equal(await cache.get(key('a', 'w')), undefined)
  assert.equal(await cache.get(key('b', 'w', { t: '1' })), undefined)
  assert.equal(await cache.get(key('a', 'w2', { t: '1' })), undefined)
})

test('bounded by entries, least recently used first out', async () => {
  const cache = new MemoryDekCache({ maxEntries: 2, ttlSeconds: 60 })
  await cache.set(key('a', '1'), dek)
  await cache.set(key('a', '2'), dek)
  await cache.get(key('a', '1'))
  await cache.set(key('a', '3'), dek)
  assert.ok(await cache.get(key('a', '1')))
  assert.equal(await cache.get(key('a', '2')), undefined)
  assert.ok(await cache.get(key('a', '3')))
})

test('entries expire after the TTL', async () => {
  let now = 1_000_000
  const cache = new MemoryDekCache({ maxEntries: 10, ttlSeconds: 1, now: () => now })
  await cache.set(key('a', '1'), dek)
  now += 900
  assert.ok(await cache.get(key('a', '1')))
  now += 200
  assert.equal(await cache.get(key('a', '1')), undefined)
})

test('purge drops one alias only; delete drops one entry; size 0 disables the cache', async () => {
  const cache = new MemoryDekCache({ maxEntries: 10, ttlSeconds: 60 })
  await cache.set(key('a', '1'), dek)
  await cache.set(key('a', '2'), dek)
  await cache.set(key('b', '1'), dek)
  await cache.delete(key('a', '2'))
  assert.equal(await cache.get(key('a', '2')), undefined)
  await cache.purge('a')
  assert.equal(await cache.get(key('a', '1')), undefined)
  assert.ok(await cache.get(key('b', '1')))
  const disabled = new MemoryDekCache({ maxEntries: 0, ttlSeconds: 60 })
  await disabled.set(key('a', '1'), dek)
  assert.equal(await disabled.get(key('a', '1')), undefined)
  assert.equal(disabled.status(), 'disabled')
})

test('an entry keeps its DEK and KEK version whole: every byte value, versions up to 2^32 - 1; a version beyond is not cached', async () => {
  const cache = new MemoryDekCache({ maxEntries: 10, ttlSeconds: 60 })
  const wide = { plaintext: Buffer.from(Array.from({ length: 256 }, (_, index) => 255 - index)), version: 0xffff_ffff }
  await cache.set(key('a', 'wide'), wide)
  assert.deepEqual(await cache.get(key('a', 'wide')), { ...wide, level: 'l1' })
  await cache.set(key('a', 'v70000'), { plaintext: Buffer.alloc(16, 7), version: 70_000 })
  assert.equal((await cache.get(key('a', 'v70000')))?.version, 70_000)
  await cache.set(key('a', 'beyond'), { plaintext: Buffer.alloc(32, 7), version: 2 ** 32 })
  assert.equal(await cache.get(key('a', 'beyond')), undefined)
})

test('purge tells apart aliases beyond the 256th', async () => {
  const cache = new MemoryDekCache({ maxEntries: 1000, ttlSeconds: 60 })
  const aliases = Array.from({ length: 300 }, (_, index) => `alias-${index}`)
  for (const alias of aliases) await cache.set(key(alias, 'w'), dek)
  await cache.purge('alias-257')
  assert.equal(await cache.get(key('alias-257', 'w')), undefined)
  assert.ok(await cache.get(key('alias-1', 'w')), 'alias-1 shares its low byte with alias-257 and stays')
  assert.equal((await Promise.all(aliases.map((alias) => cache.get(key(alias, 'w'))))).filter(Boolean).length, 299)
})

test('a hit is a copy in memory of its own: changing it changes nothing cached, and no shared slab holds the DEK', async () => {
  const cache = new MemoryDekCache({ maxEntries: 10, ttlSeconds: 60 })
  await cache.set(key('a', 'w'), { plaintext: Buffer.alloc(32, 9), version: 4 })
  const first = await cache.get(key('a', 'w'))
  assert.equal(first?.plaintext.buffer.byteLength, 32, 'not a slice of a shared pool')
  first?.plaintext.fill(0)
  assert.deepEqual((await cache.get(key('a', 'w')))?.plaintext, Buffer.alloc(32, 9))
})

test('any number of aliases is cached (beyond the 65,536 an entry format once could number)', async () => {
  const cache = new MemoryDekCache({ maxEntries: 70_000, ttlSeconds: 60 })
  for (let index = 0; index < 0x1_0000; index++) await cache.set(key(`alias-${index}`, 'w'), dek)
  await cache.set(key('one-more', 'w'), dek)
  assert.deepEqual(await cache.get(key('one-more', 'w')), { ...dek, level: 'l1' })
  assert.ok(await cache.get(key('alias-65535', 'w')))
})

test('single flight: concurrent runs of one key share one execution; failures are shared, then forgotten', async () => {
  const flights = new SingleFlight<number>()
  let runs = 0
  const work = async () => {
    runs++
    await new Promise((resolve) => setTimeout(resolve, 10))
    return runs
  }
  const results = await Promise.all(Array.from({ length: 50 }, () => flights.run('k', work)))
  assert.deepEqual(new Set(results), new Set([1]))
  assert.equal(runs, 1)
  await Promise.all([flights.run('x', work), flights.run('y', work)])
  assert.equal(runs, 3)
  const failing = () => Promise.reject(new Error('boom'))
  await assert.rejects(Promise.all([flights.run('f', failing), flights.run('f', failing)]), /boom/)
  assert.equal(await flights.run('f', async () => 7), 7)
})
