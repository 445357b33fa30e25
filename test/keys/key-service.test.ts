import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp, type TestApp } from '../support/test-app.js'
import type { Caller } from '../../src/keys/key-service.js'
import { KeyService } from '../../src/keys/key-service.js'
import { MemoryDekCache } from '../../src/cache/memory-cache.js'
import { RecordingAuditSink } from '../support/recording-audit-sink.js'

let t: TestApp
before(async () => {
  t = await startTestApp()
})
after(() => t.close())

function countingDecrypts(): { count: () => number; restore: () => void } {
  const provider = t.deps.registry.get('default')!
  const decrypt = provider.decrypt
  let calls = 0
  provider.decrypt = async (...args) => {
    calls++
    await new Promise((resolve) => setTimeout(resolve, 20))
    return decrypt.apply(provider, args)
  }
  return { count: () => calls, restore: () => (provider.decrypt = decrypt) }
}

const caller = (id: string): Caller => ({ principal: { id, issuer: 'urn:keywrap:dev' }, requestId: `r-${id}` })

test('50 concurrent cold unwraps of one key make one provider call, and each caller is audited', async () => {
  const audit = new RecordingAuditSink()
  const service = new KeyService({ ...t.deps, cache: new MemoryDekCache({ maxEntries: 100, ttlSeconds: 60 }), audit })
  const { wrappedKey, plaintext } = await new KeyService({ ...t.deps, cache: new MemoryDekCache({ maxEntries: 0, ttlSeconds: 0 }) }).generateDataKey(caller('p'), 'default', { bytes: 32, includePlaintext: true })
  const decrypts = countingDecrypts()
  try {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => service.unwrap(caller(`c${i}`), 'default', { wrappedKey })))
    assert.equal(decrypts.count(), 1)
    assert.ok(results.every((result) => result.plaintext.equals(plaintext!)))
    assert.equal(audit.entries.length, 50)
    assert.equal(new Set(audit.entries.map((entry) => entry.principal)).size, 50)
    await service.unwrap(caller('later'), 'default', { wrappedKey })
    assert.equal(decrypts.count(), 1)
    assert.equal(audit.entries.at(-1)!.cacheLevel, 'l1')
  } finally {
    decrypts.restore()
  }
})

test('concurrent unwraps with different contexts are not coalesced into one answer', async () => {
  const service = new KeyService({ ...t.deps, cache: new MemoryDekCache({ maxEntries: 0, ttlSeconds: 0 }) })
  const { wrappedKey } = await service.generateDataKey(caller('p'), 'default', { bytes: 32, includePlaintext: false, context: { a: '1' } })
  const [good, bad] = await Promise.allSettled([
    service.unwrap(caller('x'), 'default', { wrappedKey, context: { a: '1' } }),
    service.unwrap(caller('y'), 'default', { wrappedKey, context: { a: '2' } }),
  ])
  assert.equal(good.status, 'fulfilled')
  assert.equal(bad.status, 'rejected')
})

test('generateDataKey writes the new key through to the cache: the first unwrap is a hit', async () => {
  const decrypts = countingDecrypts()
  try {
    const generated = await t.call('generateDataKey', { body: {} })
    const unwrapped = await t.call('unwrap', { body: { wrappedKey: generated.json.wrappedKey } })
    assert.equal(unwrapped.json.plaintext, generated.json.plaintext)
    assert.equal(decrypts.count(), 0)
    assert.equal(t.audit.entries.at(-1)!.cacheLevel, 'l1')
  } finally {
    decrypts.restore()
  }
})
