/**
 * Two deployments on one Redis whose cache KEKs differ: the epoch records are named after the KEK's
 * identity, so they never meet; when a KEK still cannot open the record under its name, L1 keeps
 * working alone, one error line names KEYWRAP_CACHE_KEK_ALIAS, and the status says why.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import type { DekCache, DekCacheKey } from '../../src/cache/dek-cache.js'
import { KeywrapError } from '../../src/errors.js'
import { KeyringFile } from '../../src/providers/local/keyring-file.js'
import { LocalKeyProvider } from '../../src/providers/local/local-provider.js'
import { redisUrlForTests, testKeyPrefix } from '../support/redis-server.js'
import { closeInstances, dekKey, keysUnder, manualClock, newDek, rawClient, startInstance } from './cache-fixture.js'
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

async function localKek(t: { after(fn: () => unknown): void }, name = 'default'): Promise<LocalKeyProvider> {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-cache-kek-'))
  t.after(() => rm(home, { recursive: true, force: true }))
  const keyring = new KeyringFile(home)
  await keyring.ensureKeys([name])
  const provider = new LocalKeyProvider(name, keyring)
  await provider.refresh()
  t.after(() => provider.close())
  return provider
}

/** `unwraps` of each key as the key service makes them: a lookup, and on a miss the provider's answer cached. */
async function unwrapAll(cache: DekCache, keys: DekCacheKey[], rounds: number) {
  let providerCalls = 0
  const levels: Record<string, number> = {}
  for (let round = 0; round < rounds; round++) {
    for (const key of keys) {
      const hit = await cache.get(key)
      levels[hit?.level ?? 'miss'] = (levels[hit?.level ?? 'miss'] ?? 0) + 1
      if (!hit) {
        providerCalls++
        await cache.set(key, newDek())
      }
    }
  }
  return { providerCalls, levels }
}

test('two development keyrings (each its own local://default) on one Redis and prefix: each keeps its own epoch records, both cache', async (t) => {
  const keyPrefix = testKeyPrefix('two-keyrings')
  const [first, second] = [await localKek(t), await localKek(t)]
  assert.equal(first.uri, second.uri)
  assert.notEqual(first.identity(), second.identity())
  const log = recordingLogger()
  const a = await startInstance({ url, keyPrefix, kek: first, kekAlias: 'default', logger: log })
  const b = await startInstance({ url, keyPrefix, kek: second, kekAlias: 'default', logger: log })
  const keys = Array.from({ length: 20 }, () => dekKey('orders'))
  const onA = await unwrapAll(a.cache, keys, 3)
  const onB = await unwrapAll(b.cache, keys, 3)
  assert.deepEqual(onA, { providerCalls: 20, levels: { miss: 20, l1: 40 } })
  assert.deepEqual(onB, { providerCalls: 20, levels: { miss: 20, l1: 40 } })
  const records = await keysUnder(raw, `${keyPrefix}epoch:`)
  assert.equal(records.length, 2, 'one epoch record per KEK')
  assert.deepEqual([a.cache.status(), b.cache.status()], ['ok', 'ok'])
  assert.deepEqual(
    log.lines.filter((line) => line.level === 'error'),
    [],
  )

  // And each one's L2 works: a third instance with the second keyring finds B's entries there.
  const c = await startInstance({ url, keyPrefix, kek: second, l1Entries: 0 })
  assert.equal((await c.cache.get(keys[0]!))?.level, 'l2')
})

test('a KEK that cannot open the record under its name: L1 alone (20 keys × 3 lookups, 20 misses), one error line, degraded with the reason', async () => {
  const clock = manualClock()
  const keyPrefix = testKeyPrefix('kek-refused')
  // The same URI (so the same name), different key material: as two Cloud KMS stand-ins with one key name.
  const a = await startInstance({ url, keyPrefix, kek: new CountingProvider(), now: clock.now })
  await a.cache.set(dekKey('orders'), newDek())
  const [record] = await keysUnder(raw, `${keyPrefix}epoch:`)
  const recordBefore = await raw.getBuffer(record!)

  const log = recordingLogger()
  const kek = new CountingProvider()
  const b = await startInstance({ url, keyPrefix, kek, kekAlias: 'cache-kek', logger: log, now: clock.now, offlineGraceMs: 30_000 })
  const keys = Array.from({ length: 20 }, () => dekKey('orders'))
  const result = await unwrapAll(b.cache, keys, 3)
  assert.deepEqual(result, { providerCalls: 20, levels: { miss: 20, l1: 40 } })
  assert.equal(kek.decrypts, 1, 'the epoch secret was tried once')
  assert.equal(b.cache.status(), 'degraded')
  assert.equal(b.cache.degradedReason(), 'cache_kek_refused')
  const errors = log.lines.filter((line) => line.level === 'error')
  assert.equal(errors.length, 1)
  assert.match(errors[0]!.message, /KEYWRAP_CACHE_KEK_ALIAS=cache-kek/)
  assert.match(errors[0]!.message, /same cache KEK/)
  assert.deepEqual(await raw.getBuffer(record!), recordBefore, 'the other deployment’s record is left alone')
  assert.equal((await keysUnder(raw, `${keyPrefix}dek:`)).length, 1, 'nothing written to L2')

  // No purge elsewhere reaches it, so an entry lives at most the offline grace.
  clock.advance(30_001)
  assert.equal(await b.cache.get(keys[0]!), undefined)
  await assert.rejects(b.cache.purge('orders'), (error: KeywrapError) => error.code === 'cache_unavailable' && /cannot be opened/.test(error.detail ?? ''))
})

test('a cache KEK whose provider fails: L1 alone, one error line, degraded (cache_kek_unavailable), back to L2 when it answers', async () => {
  const clock = manualClock()
  const kek = new CountingProvider()
  kek.failure = new KeywrapError('provider_unavailable')
  const log = recordingLogger()
  const a = await startInstance({
    url,
    keyPrefix: testKeyPrefix('kek-failing'),
    kek,
    kekAlias: 'default',
    logger: log,
    now: clock.now,
    providerRetryMs: 5000,
  })
  const key = dekKey('orders')
  await a.cache.set(key, newDek())
  for (let i = 0; i < 20; i++) {
    assert.equal((await a.cache.get(key))?.level, 'l1')
    clock.advance(100)
  }
  assert.equal(kek.calls, 1)
  assert.equal(a.cache.degradedReason(), 'cache_kek_unavailable')
  assert.equal(log.lines.filter((line) => line.level === 'error').length, 1)
  kek.failure = undefined
  clock.advance(5000)
  await a.cache.set(key, newDek())
  assert.equal(a.cache.status(), 'ok')
  assert.equal(a.cache.degradedReason(), undefined)
  assert.ok(log.lines.some((line) => line.level === 'info' && /back in use/.test(line.message)))
})
