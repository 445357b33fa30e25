import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp, type TestApp } from '../support/test-app.js'
import type { Caller } from '../../src/keys/key-service.js'
import { KeyService } from '../../src/keys/key-service.js'
import { MemoryDekCache } from '../../src/cache/memory-cache.js'
import { RecordingAuditSink } from '../support/recording-audit-sink.js'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeywrapError } from '../../src/errors.js'
import type { KeyDescription, KeyProvider } from '../../src/providers/key-provider.js'
import { KeyRegistry } from '../../src/providers/key-registry.js'
import { KeyringFile } from '../../src/providers/local/keyring-file.js'
import { LocalKeyProvider } from '../../src/providers/local/local-provider.js'

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
  const { wrappedKey, plaintext } = await new KeyService({ ...t.deps, cache: new MemoryDekCache({ maxEntries: 0, ttlSeconds: 0 }) }).generateDataKey(
    caller('p'),
    'default',
    { bytes: 32, includePlaintext: true },
  )
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

/** A local key whose description stays as it was until refresh() is called (an instance that has not seen a rotation yet). */
class LaggingProvider implements KeyProvider {
  readonly uri: string
  refreshes = 0
  refreshFailure: Error | undefined
  private seen: KeyDescription

  constructor(private readonly inner: LocalKeyProvider) {
    this.uri = inner.uri
    this.seen = inner.describe()
  }

  encrypt(plaintext: Buffer, aad: Buffer) {
    return this.inner.encrypt(plaintext, aad)
  }

  decrypt(ciphertext: Buffer, aad: Buffer, version: number) {
    return this.inner.decrypt(ciphertext, aad, version)
  }

  describe(): KeyDescription {
    return this.seen
  }

  async refresh(): Promise<KeyDescription> {
    this.refreshes++
    if (this.refreshFailure) throw this.refreshFailure
    this.seen = await this.inner.refresh()
    return this.seen
  }

  probe() {
    return this.inner.probe()
  }

  close() {
    return this.inner.close()
  }
}

/**
 * An instance that has not seen a rotation yet (its provider lags), and a key wrapped under the new
 * version by another instance that has.
 */
async function rotationSeenElsewhere(options: { includePlaintext: boolean }) {
  const keyring = new KeyringFile(await mkdtemp(join(tmpdir(), 'keywrap-lagging-')))
  await keyring.ensureKeys(['default'])
  const inner = new LocalKeyProvider('default', keyring)
  await inner.refresh()
  const lagging = new LaggingProvider(inner)
  await keyring.rotate('default')
  await inner.refresh()
  const elsewhere = new KeyService({
    ...t.deps,
    registry: new KeyRegistry(new Map([['default', inner]])),
    cache: new MemoryDekCache({ maxEntries: 0, ttlSeconds: 0 }),
  })
  const generated = await elsewhere.generateDataKey(caller('p'), 'default', { bytes: 32, ...options })
  const audit = new RecordingAuditSink()
  const service = new KeyService({
    ...t.deps,
    registry: new KeyRegistry(new Map([['default', lagging]])),
    cache: new MemoryDekCache({ maxEntries: 0, ttlSeconds: 0 }),
    audit,
  })
  return { lagging, service, audit, generated, close: () => inner.close() }
}

test('a wrapped key of a version this instance has not seen yet is unwrapped after one read of the key’s metadata', async () => {
  const { lagging, service, audit, generated, close } = await rotationSeenElsewhere({ includePlaintext: true })
  try {
    assert.match(generated.wrappedKey, /^kw1\.2\./)
    assert.equal(Math.max(...lagging.describe().versions.map((v) => v.version)), 1)
    const result = await service.unwrap(caller('a'), 'default', { wrappedKey: generated.wrappedKey })
    assert.deepEqual(result.plaintext, generated.plaintext)
    assert.equal(result.primary, true)
    assert.equal(lagging.refreshes, 1)
    // Known now: no further read.
    await service.unwrap(caller('b'), 'default', { wrappedKey: generated.wrappedKey })
    assert.equal(lagging.refreshes, 1)
    assert.deepEqual(
      audit.entries.map((entry) => entry.outcome),
      ['allowed', 'allowed'],
    )
  } finally {
    await close()
  }
})

test('when the metadata cannot be read, a key of an unseen version is refused as retryable, not as invalid', async () => {
  const { lagging, service, generated, close } = await rotationSeenElsewhere({ includePlaintext: false })
  lagging.refreshFailure = new Error('metadata unavailable (test)')
  try {
    await assert.rejects(service.unwrap(caller('a'), 'default', { wrappedKey: generated.wrappedKey }), (error: unknown) => {
      assert.ok(error instanceof KeywrapError)
      assert.equal(error.code, 'provider_unavailable')
      assert.equal(error.retryAfterSeconds, 5)
      return true
    })
    assert.equal(lagging.refreshes, 1)
  } finally {
    await close()
  }
})

test('forged versions cost at most one metadata read per alias per 5 s, failed reads included', async () => {
  const { lagging, service, generated, close } = await rotationSeenElsewhere({ includePlaintext: false })
  lagging.refreshFailure = new Error('metadata unavailable (test)')
  try {
    const forged = generated.wrappedKey.replace(/^kw1\.2\./, 'kw1.999999999.')
    for (let attempt = 0; attempt < 50; attempt++) {
      await assert.rejects(service.unwrap(caller(`f${attempt}`), 'default', { wrappedKey: attempt % 2 ? forged : generated.wrappedKey }), (error: unknown) => {
        assert.ok(error instanceof KeywrapError)
        assert.equal(error.code, 'provider_unavailable', 'the read failed: retryable, not invalid')
        return true
      })
    }
    assert.equal(lagging.refreshes, 1, '50 requests, one read')
  } finally {
    await close()
  }
})
