// The Cloud KMS provider through the real @google-cloud/kms client against the stand-in on loopback.
import assert from 'node:assert/strict'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import type { Counter } from 'prom-client'
import { KeywrapError } from '../../src/errors.js'
import { Metrics } from '../../src/metrics/metrics.js'
import { GcpKmsKeyProvider, type GcpKmsKeyProviderOptions, type KmsClient } from '../../src/providers/gcp-kms/gcp-kms-provider.js'
import { createKmsClient } from '../../src/providers/gcp-kms/kms-client.js'
import { KmsStandIn, type CreateKeyOptions, type Faults, type RunningKmsStandIn } from '../support/kms-stand-in.js'
import { recordingLogger, type LoggedLine } from '../support/recording-logger.js'

// The emulator settings alone must keep the client from looking for credentials or probing the
// metadata server, so this file does not set METADATA_SERVER_DETECTION the way the app does.
delete process.env.METADATA_SERVER_DETECTION
const warnings: Error[] = []
const onWarning = (warning: Error) => warnings.push(warning)
process.on('warning', onWarning)

const dek = Buffer.from('0123456789abcdef0123456789abcdef')
const aad = Buffer.from('keywrap/aad/v1 tenant=acme')
const FAST: Partial<GcpKmsKeyProviderOptions> = { callTimeoutMs: 200, totalBudgetMs: 1000, random: () => 0.5 }

async function counted(counter: Counter<string>, labels: Record<string, string>): Promise<number> {
  const { values } = await counter.get()
  return values
    .filter((sample) => Object.entries(labels).every(([name, value]) => sample.labels[name] === value))
    .reduce((sum, sample) => sum + sample.value, 0)
}

async function rejection(promise: Promise<unknown>, code: string): Promise<KeywrapError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof KeywrapError, `expected a KeywrapError, got ${String(error)}`)
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`)
    return error
  }
  assert.fail(`expected ${code}, but the call succeeded`)
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A small deterministic PRNG (mulberry32), so that a fault storm is the same on every run. */
function seeded(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

let keySequence = 0
function keyNameFor(label: string): string {
  keySequence += 1
  return `projects/test-project/locations/global/keyRings/keywrap/cryptoKeys/${label}-${keySequence}`
}

// The slow cases run on stand-ins of their own, alongside the rest, to keep the file quick.
describe('GcpKmsKeyProvider', { concurrency: true }, () => {
  // Its cases share one stand-in and its faults: one at a time (subtests inherit concurrency).
  describe('against the Cloud KMS stand-in', { concurrency: 1 }, againstTheStandIn)
  describe('under sustained faults, each on a stand-in of its own', { concurrency: true }, underSustainedFaults)
})

function againstTheStandIn(): void {
  const standIn = new KmsStandIn()
  let server: RunningKmsStandIn
  let client: ReturnType<typeof createKmsClient>
  const authLookups: string[] = []

  before(async () => {
    server = await standIn.start()
    client = createKmsClient({ emulatorHost: server.address, projectId: 'test-project' })
    // getUniverseDomain is asked on every stub creation; with universeDomain set it answers from the
    // options, and only getClient would start the Application Default Credentials search.
    for (const method of ['getClient', 'getApplicationDefault', 'getProjectId', 'getCredentials'] as const) {
      const auth = client.auth as unknown as Record<string, (...args: unknown[]) => unknown>
      const original = auth[method]!.bind(client.auth)
      auth[method] = (...args: unknown[]) => {
        authLookups.push(method)
        return original(...args)
      }
    }
  })

  after(async () => {
    await client.close()
    await server.close()
  })

  beforeEach(() => {
    standIn.clearFaults()
    standIn.resetCounters()
    standIn.deniedKeys.clear()
  })

  afterEach(async () => {
    await waitFor(() => standIn.parkedCalls === 0)
  })

  /** A fresh key in the stand-in and a provider for it, refreshed unless told otherwise. */
  async function setUp(options: { key?: CreateKeyOptions; provider?: Partial<GcpKmsKeyProviderOptions>; refresh?: boolean; client?: KmsClient } = {}) {
    const keyName = keyNameFor('key')
    standIn.createKey(keyName, options.key)
    const metrics = new Metrics()
    const logger = recordingLogger()
    const provider = new GcpKmsKeyProvider({ keyName, client: options.client ?? client, metrics, logger, ...options.provider })
    if (options.refresh !== false) await provider.refresh()
    standIn.resetCounters()
    return { keyName, provider, metrics, logger }
  }

  /** A ciphertext of `dek` under one particular version, made with the client directly. */
  async function encryptUnder(keyName: string, version: number): Promise<Buffer> {
    const [response] = await client.encrypt({ name: `${keyName}/cryptoKeyVersions/${version}`, plaintext: dek, additionalAuthenticatedData: aad })
    return Buffer.from(response.ciphertext as Uint8Array)
  }

  describe('encrypt and decrypt', () => {
    it('round-trips with AAD; the version Encrypt names belongs to the key', async () => {
      const { keyName, provider } = await setUp({ key: { versions: 2 } })
      assert.equal(provider.uri, `gcp-kms://${keyName}`)
      const { ciphertext, version } = await provider.encrypt(dek, aad)
      assert.equal(version, 2)
      assert.ok(!ciphertext.includes(dek))
      assert.deepEqual(await provider.decrypt(ciphertext, aad, version), { plaintext: dek })
      assert.deepEqual(
        standIn.requests.map((r) => [r.method, r.name]),
        [
          ['Encrypt', keyName],
          ['Decrypt', keyName],
        ],
      )
    })

    it('learns a version rotated in since the last refresh from Encrypt, without reading metadata', async () => {
      const { keyName, provider } = await setUp()
      standIn.rotate(keyName)
      const { version } = await provider.encrypt(dek, aad)
      assert.equal(version, 2)
      const description = provider.describe()
      assert.equal(description.primaryVersion, 2)
      assert.deepEqual(description.versions.at(-1), { version: 2, name: `${keyName}/cryptoKeyVersions/2`, state: 'ENABLED' })
      assert.equal(standIn.calls.GetCryptoKey + standIn.calls.ListCryptoKeyVersions, 0)
    })

    it('refuses an Encrypt answer that names a version of another key (provider_misconfigured)', async () => {
      const otherVersion = 'projects/test-project/locations/global/keyRings/keywrap/cryptoKeys/other/cryptoKeyVersions/1'
      const lying = {
        ...bound(client),
        encrypt: async (request: object, options: object) => {
          const [response, ...rest] = await client.encrypt(request, options)
          return [{ ...response, name: otherVersion }, ...rest]
        },
      } as unknown as KmsClient
      const { provider, logger } = await setUp({ client: lying })
      const error = await rejection(provider.encrypt(dek, aad), 'provider_misconfigured')
      assert.equal(error.detail, undefined)
      assert.equal(logger.lines.length, 1)
      assert.match(logger.lines[0]!.message, /not a version of/)
      assert.equal(standIn.calls.Encrypt, 1, 'not retried')
    })

    it('reads key metadata only on refresh: N decrypts make no GetCryptoKey or List calls', async () => {
      const { provider } = await setUp()
      const { ciphertext, version } = await provider.encrypt(dek, aad)
      for (let i = 0; i < 20; i++) await provider.decrypt(ciphertext, aad, version)
      assert.deepEqual(
        { ...standIn.calls },
        { Encrypt: 1, Decrypt: 20, GetCryptoKey: 0, ListCryptoKeyVersions: 0, GetCryptoKeyVersion: 0, AsymmetricSign: 0, GetPublicKey: 0 },
      )
      await provider.refresh()
      assert.equal(standIn.calls.GetCryptoKey, 1)
      assert.equal(standIn.calls.ListCryptoKeyVersions, 1)
    })
  })

  describe('key metadata', () => {
    it('describe() throws before the first refresh, then reports the last refresh', async () => {
      const nextRotationTime = new Date('2030-01-01T00:00:00Z')
      const { keyName, provider } = await setUp({
        key: { versions: ['DESTROYED', 'DISABLED', 'DESTROY_SCHEDULED', 'ENABLED'], rotationPeriodSeconds: 7776000, nextRotationTime },
        refresh: false,
      })
      assert.throws(() => provider.describe(), /before its first refresh/)
      const refreshed = await provider.refresh()
      assert.deepEqual(provider.describe(), refreshed)
      assert.equal(refreshed.uri, `gcp-kms://${keyName}`)
      assert.equal(refreshed.provider, 'gcp-kms')
      assert.equal(refreshed.primaryVersion, 4)
      assert.deepEqual(
        refreshed.versions.map((v) => [v.version, v.name, v.state]),
        [
          [1, `${keyName}/cryptoKeyVersions/1`, 'DESTROYED'],
          [2, `${keyName}/cryptoKeyVersions/2`, 'DISABLED'],
          [3, `${keyName}/cryptoKeyVersions/3`, 'DESTROY_SCHEDULED'],
          [4, `${keyName}/cryptoKeyVersions/4`, 'ENABLED'],
        ],
      )
      for (const version of refreshed.versions) assert.match(version.createTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      assert.deepEqual(refreshed.attributes, {
        protectionLevel: 'SOFTWARE',
        algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
        rotationPeriod: '7776000s',
        nextRotationTime: nextRotationTime.toISOString(),
      })
      assert.ok(Date.now() - Date.parse(refreshed.refreshedAt) < 5000)
    })

    it('pages through every version', async () => {
      const { provider } = await setUp({ key: { versions: 1001 } })
      const description = await provider.refresh()
      assert.equal(description.versions.length, 1001)
      assert.equal(description.primaryVersion, 1001)
      assert.equal(standIn.calls.ListCryptoKeyVersions, 2)
    })

    it('a failed refresh keeps the last description and explains itself to operators', async () => {
      const { keyName, provider } = await setUp()
      const before = provider.describe()
      standIn.deniedKeys.add(keyName)
      await assert.rejects(provider.refresh(), (error: Error) => {
        assert.match(error.message, /cannot be read: PERMISSION_DENIED: Permission 'cloudkms\.cryptoKeys\.get' denied/)
        assert.ok(error.cause instanceof KeywrapError)
        assert.equal(error.cause.code, 'provider_misconfigured')
        return true
      })
      assert.equal(provider.describe(), before)
    })
  })

  describe('key version states', () => {
    it('refuses a version the last refresh saw disabled or destroyed before calling KMS (409)', async () => {
      const { keyName, provider } = await setUp({ key: { versions: 3 } })
      const [first, second] = [await encryptUnder(keyName, 1), await encryptUnder(keyName, 2)]
      standIn.setState(keyName, 1, 'DISABLED')
      standIn.setState(keyName, 2, 'DESTROYED')
      await provider.refresh()
      standIn.resetCounters()
      const disabled = await rejection(provider.decrypt(first, aad, 1), 'key_version_not_enabled')
      assert.equal(disabled.status, 409)
      assert.equal(disabled.detail, 'Key version 1 is DISABLED.')
      const destroyed = await rejection(provider.decrypt(second, aad, 2), 'key_version_destroyed')
      assert.equal(destroyed.status, 409)
      assert.equal(standIn.calls.Decrypt, 0)
    })

    it("maps KMS's own FAILED_PRECONDITION when the cached states are stale", async () => {
      const { keyName, provider, metrics } = await setUp({ key: { versions: 3 } })
      const ciphertexts = [await encryptUnder(keyName, 1), await encryptUnder(keyName, 2)]
      standIn.setState(keyName, 1, 'DISABLED')
      standIn.setState(keyName, 2, 'DESTROY_SCHEDULED')
      const disabled = await rejection(provider.decrypt(ciphertexts[0]!, aad, 1), 'key_version_not_enabled')
      assert.equal(disabled.detail, 'Key version 1 is DISABLED.')
      const scheduled = await rejection(provider.decrypt(ciphertexts[1]!, aad, 2), 'key_version_not_enabled')
      assert.equal(scheduled.detail, 'Key version 2 is DESTROY_SCHEDULED.')
      standIn.setState(keyName, 2, 'DESTROYED')
      const destroyed = await rejection(provider.decrypt(ciphertexts[1]!, aad, 2), 'key_version_destroyed')
      assert.equal(destroyed.detail, 'Key version 2 is destroyed.')
      assert.equal(standIn.calls.Decrypt, 3, 'each was asked once, not retried')
      assert.equal(await counted(metrics.providerFailures, { method: 'Decrypt', code: 'FAILED_PRECONDITION' }), 3)

      standIn.setState(keyName, 3, 'DISABLED')
      const primary = await rejection(provider.encrypt(dek, aad), 'key_version_not_enabled')
      assert.equal(primary.detail, 'Key version 3 is DISABLED.')
    })
  })

  describe('error mapping', () => {
    it('INVALID_ARGUMENT on Decrypt (wrong AAD, garbage, another key) is cannot_unwrap, not retried', async () => {
      const { provider } = await setUp()
      const other = await setUp()
      const { ciphertext, version } = await provider.encrypt(dek, aad)
      const fromOtherKey = await other.provider.encrypt(dek, aad)
      standIn.resetCounters()
      for (const attempt of [
        provider.decrypt(ciphertext, Buffer.from('another context'), version),
        provider.decrypt(Buffer.from('not a ciphertext, not at all, no'), aad, version),
        provider.decrypt(fromOtherKey.ciphertext, aad, fromOtherKey.version),
      ]) {
        const error = await rejection(attempt, 'cannot_unwrap')
        assert.equal(error.status, 422)
        assert.equal(error.detail, undefined)
      }
      assert.equal(standIn.calls.Decrypt, 3)
    })

    it('PERMISSION_DENIED is provider_misconfigured (500): the reason goes to logger.error, not to the caller', async () => {
      const { keyName, provider, logger, metrics } = await setUp()
      const { ciphertext, version } = await provider.encrypt(dek, aad)
      standIn.deniedKeys.add(keyName)
      for (const attempt of [provider.encrypt(dek, aad), provider.decrypt(ciphertext, aad, version)]) {
        const error = await rejection(attempt, 'provider_misconfigured')
        assert.equal(error.status, 500)
        assert.equal(error.detail, undefined)
        assert.doesNotMatch(error.message, /cloudkms|projects\//)
      }
      assert.deepEqual(
        logger.lines.map((e) => e.level),
        ['error', 'error'],
      )
      for (const entry of logger.lines) {
        assert.match(entry.message, /roles\/cloudkms\.cryptoKeyEncrypterDecrypter/)
        assert.ok(entry.message.includes(keyName))
        assert.match(JSON.stringify(entry.details), /PERMISSION_DENIED: Permission 'cloudkms\.cryptoKeyVersions\.useTo(En|De)crypt' denied/)
      }
      assert.equal(standIn.calls.Encrypt + standIn.calls.Decrypt, 3, 'not retried')
      assert.equal(await counted(metrics.providerFailures, { code: 'PERMISSION_DENIED' }), 2)
      assertNoSecrets(logger.lines, ciphertext)
    })

    it('NOT_FOUND is provider_misconfigured with the missing key logged', async () => {
      const keyName = keyNameFor('missing')
      const logger = recordingLogger()
      const provider = new GcpKmsKeyProvider({ keyName, client, logger })
      const error = await rejection(provider.encrypt(dek, aad), 'provider_misconfigured')
      assert.equal(error.detail, undefined)
      assert.equal(logger.lines[0]?.level, 'error')
      assert.match(logger.lines[0]!.message, /does not exist/)
      await assert.rejects(provider.refresh(), /cannot be read: NOT_FOUND/)
    })

    it('RESOURCE_EXHAUSTED is provider_unavailable (503, retry after 5 s) and is not retried', async () => {
      const { provider, metrics } = await setUp()
      standIn.setFaults({ resourceExhaustedNext: 1 })
      const error = await rejection(provider.encrypt(dek, aad), 'provider_unavailable')
      assert.equal(error.status, 503)
      assert.equal(error.retryAfterSeconds, 5)
      assert.equal(standIn.calls.Encrypt, 1)
      assert.equal(await counted(metrics.providerFailures, { method: 'Encrypt', code: 'RESOURCE_EXHAUSTED' }), 1)
      assert.equal(await counted(metrics.providerRetries, {}), 0)
    })

    it('UNAVAILABLE is retried with backoff; when it lasts the whole budget, provider_unavailable (503, retry after 1 s)', async () => {
      const { provider, metrics } = await setUp({ provider: FAST })
      standIn.setFaults({ unavailableNext: 2 })
      const { ciphertext, version } = await provider.encrypt(dek, aad)
      assert.equal(standIn.calls.Encrypt, 3)
      assert.equal(await counted(metrics.providerRetries, { method: 'Encrypt', reason: 'UNAVAILABLE' }), 2)

      standIn.setFaults({ unavailableRate: 1 })
      const started = performance.now()
      const error = await rejection(provider.decrypt(ciphertext, aad, version), 'provider_unavailable')
      assert.ok(performance.now() - started < 1100)
      assert.equal(error.retryAfterSeconds, 1)
      assert.ok(standIn.calls.Decrypt > 3, `${standIn.calls.Decrypt} attempts`)
      assert.equal(await counted(metrics.providerFailures, { method: 'Decrypt', code: 'UNAVAILABLE' }), standIn.calls.Decrypt)
    })

    it('a slow KMS trips the per-attempt deadline: DEADLINE_EXCEEDED retried, then 503', async () => {
      const { provider, metrics } = await setUp({ provider: FAST })
      standIn.setFaults({ latencyMs: 300 })
      const error = await rejection(provider.encrypt(dek, aad), 'provider_unavailable')
      assert.equal(error.retryAfterSeconds, 1)
      assert.ok(standIn.calls.Encrypt >= 4)
      assert.equal(await counted(metrics.providerFailures, { code: 'DEADLINE_EXCEEDED' }), standIn.calls.Encrypt)
      standIn.clearFaults()
      assert.equal((await provider.encrypt(dek, aad)).version, 1)
    })

    it('an oversized encryption context is invalid_request, not a provider fault', async () => {
      const { provider, logger } = await setUp()
      const error = await rejection(provider.encrypt(dek, Buffer.alloc(64 * 1024 + 1)), 'invalid_request')
      assert.equal(error.status, 400)
      assert.equal(logger.lines.length, 0)
    })
  })

  describe('a hung Cloud KMS', () => {
    it('is answered with 503 within a small budget', async () => {
      const { provider } = await setUp({ provider: FAST })
      standIn.setFaults({ hang: true, methods: ['Decrypt'] })
      const { ciphertext, version } = await provider.encrypt(dek, aad)
      const started = performance.now()
      await rejection(provider.decrypt(ciphertext, aad, version), 'provider_unavailable')
      const elapsed = performance.now() - started
      assert.ok(elapsed >= 800 && elapsed < 1200, `answered after ${Math.round(elapsed)} ms`)
    })
  })

  describe('CRC32C integrity', () => {
    const cases: { fault: keyof Faults; method: 'Encrypt' | 'Decrypt' }[] = [
      { fault: 'corruptResponseCrc32c', method: 'Encrypt' },
      { fault: 'corruptCiphertext', method: 'Encrypt' },
      { fault: 'unverifiedChecksums', method: 'Encrypt' },
      { fault: 'corruptResponseCrc32c', method: 'Decrypt' },
      { fault: 'corruptPlaintext', method: 'Decrypt' },
    ]

    for (const { fault, method } of cases) {
      it(`${fault} on ${method}: retried twice, then 503, never the corrupted bytes`, async () => {
        const { provider, metrics, logger } = await setUp({ provider: FAST })
        const { ciphertext, version } = await provider.encrypt(dek, aad)
        standIn.resetCounters()
        standIn.setFaults({ [fault]: true, methods: [method] })
        const attempt = method === 'Encrypt' ? provider.encrypt(dek, aad) : provider.decrypt(ciphertext, aad, version)
        const error = await rejection(attempt, 'provider_unavailable')
        assert.equal(error.retryAfterSeconds, 1)
        assert.equal(standIn.calls[method], 3, 'one call and two integrity retries')
        assert.equal(await counted(metrics.providerFailures, { method, code: 'DATA_LOSS' }), 3)
        assert.equal(await counted(metrics.providerRetries, { method, reason: 'DATA_LOSS' }), 2)
        assert.equal(logger.lines.length, 1)
        assert.match(logger.lines[0]!.message, /CRC32C/)
        assertNoSecrets(logger.lines, ciphertext)
      })

      it(`${fault} on ${method} in the first answer only: the retry succeeds`, async () => {
        const { provider } = await setUp({ provider: FAST, client: clearingFaultsAfterOneCall(client, standIn) })
        const { ciphertext, version } = await provider.encrypt(dek, aad)
        standIn.resetCounters()
        standIn.setFaults({ [fault]: true, methods: [method] })
        if (method === 'Encrypt') {
          const encrypted = await provider.encrypt(dek, aad)
          assert.deepEqual((await provider.decrypt(encrypted.ciphertext, aad, encrypted.version)).plaintext, dek)
        } else {
          assert.deepEqual((await provider.decrypt(ciphertext, aad, version)).plaintext, dek)
        }
        assert.equal(standIn.calls[method], 2)
        assert.deepEqual(
          standIn.requests.filter((r) => r.method === method).map((r) => r.faults),
          [[fault], []],
        )
      })
    }

    it('a request damaged on its way (KMS rejects its checksum) is retried, not reported as cannot_unwrap', async () => {
      let damaged = 0
      const damaging = {
        ...bound(client),
        decrypt: (request: { ciphertextCrc32c: { value: number } }, options: object) => {
          const sent = damaged++ === 0 ? { ...request, ciphertextCrc32c: { value: request.ciphertextCrc32c.value ^ 1 } } : request
          return client.decrypt(sent, options)
        },
      } as unknown as KmsClient
      const { provider, metrics } = await setUp({ provider: FAST, client: damaging })
      const { ciphertext, version } = await provider.encrypt(dek, aad)
      assert.deepEqual((await provider.decrypt(ciphertext, aad, version)).plaintext, dek)
      assert.equal(standIn.calls.Decrypt, 2)
      assert.equal(await counted(metrics.providerRetries, { method: 'Decrypt', reason: 'DATA_LOSS' }), 1)
    })
  })

  describe('probe', () => {
    it('makes one real Encrypt+Decrypt round trip per 10 s, shared by concurrent callers', async () => {
      let now = 1_000_000
      const { keyName, provider } = await setUp({ provider: { ...FAST, now: () => now } })
      await Promise.all([provider.probe(), provider.probe(), provider.probe()])
      assert.equal(standIn.calls.Encrypt, 1)
      assert.equal(standIn.calls.Decrypt, 1)
      now += 9_000
      await provider.probe()
      assert.equal(standIn.calls.Encrypt, 1)

      now += 2_000
      standIn.deniedKeys.add(keyName)
      await rejection(provider.probe(), 'provider_misconfigured')
      await rejection(provider.probe(), 'provider_misconfigured')
      assert.equal(standIn.calls.Encrypt, 2, 'a failed probe is cached too')
      standIn.deniedKeys.clear()
      now += 10_000
      await provider.probe()
      assert.equal(standIn.calls.Encrypt, 3)
    })
  })

  describe('client', () => {
    it('close() closes the client it was given', async () => {
      const own = createKmsClient({ emulatorHost: server.address })
      const keyName = keyNameFor('closing')
      standIn.createKey(keyName)
      const provider = new GcpKmsKeyProvider({ keyName, client: own })
      await provider.refresh()
      await provider.close()
      await assert.rejects(provider.encrypt(dek, aad))
    })

    it('rejects key names that are not CryptoKeys, and bad emulator hosts', () => {
      assert.throws(() => new GcpKmsKeyProvider({ keyName: 'projects/p/keyRings/r/cryptoKeys/k', client }), /not a Cloud KMS CryptoKey name/)
      assert.throws(() => new GcpKmsKeyProvider({ keyName: `${keyNameFor('v')}/cryptoKeyVersions/1`, client }), /not a Cloud KMS CryptoKey name/)
      for (const bad of ['127.0.0.1', ':8085', 'host:99999', '::1:8085']) assert.throws(() => createKmsClient({ emulatorHost: bad }), /host:port/)
    })

    it('with an emulator host, never looks for Google credentials or prints MetadataLookupWarning', async () => {
      const { provider } = await setUp()
      await provider.probe()
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.deepEqual(authLookups, [])
      assert.deepEqual(
        warnings.filter((w) => w.name === 'MetadataLookupWarning'),
        [],
      )
    })
  })
}

function underSustainedFaults(): void {
  it('a hung KMS is answered with 503 in under 5 s with the default timeout and budget', async () => {
    await withOwnStandIn({}, async (standIn, provider) => {
      standIn.setFaults({ hang: true })
      const started = performance.now()
      const error = await rejection(provider.encrypt(dek, aad), 'provider_unavailable')
      const elapsed = performance.now() - started
      assert.ok(elapsed < 4500, `answered after ${Math.round(elapsed)} ms`)
      assert.equal(error.retryAfterSeconds, 1)
      assert.equal(standIn.calls.Encrypt, 2, 'two 2 s attempts fill the 4 s budget')
      await waitFor(() => standIn.parkedCalls === 0)
    })
  })

  it('at a 30 % UNAVAILABLE rate, 100 decrypts all succeed through retries', async () => {
    await withOwnStandIn({ random: seeded(42) }, async (standIn, provider, metrics) => {
      const { ciphertext, version } = await provider.encrypt(dek, aad)
      standIn.setFaults({ unavailableRate: 0.3 })
      for (let i = 0; i < 100; i++) assert.deepEqual((await provider.decrypt(ciphertext, aad, version)).plaintext, dek)
      const retries = await counted(metrics.providerRetries, { method: 'Decrypt', reason: 'UNAVAILABLE' })
      assert.equal(standIn.calls.Decrypt, 100 + retries)
      assert.ok(retries > 15, `${retries} retries`)
    })
  })
}

/** A stand-in, a client and a refreshed provider with the default timeout and budget, for one test. */
async function withOwnStandIn(
  options: { random?: () => number },
  test: (standIn: KmsStandIn, provider: GcpKmsKeyProvider, metrics: Metrics) => Promise<void>,
): Promise<void> {
  const standIn = new KmsStandIn(options)
  const running = await standIn.start()
  const client = createKmsClient({ emulatorHost: running.address })
  try {
    const keyName = keyNameFor('own')
    standIn.createKey(keyName)
    const metrics = new Metrics()
    const provider = new GcpKmsKeyProvider({ keyName, client, metrics, random: seeded(7) })
    await provider.refresh()
    standIn.resetCounters()
    await test(standIn, provider, metrics)
  } finally {
    await client.close()
    await running.close()
  }
}

after(() => {
  process.off('warning', onWarning)
  assert.deepEqual(
    warnings.filter((w) => w.name === 'MetadataLookupWarning'),
    [],
    'no MetadataLookupWarning over the whole file',
  )
})

/** The client's methods, bound, so a test can replace one of them. */
function bound(client: KmsClient): KmsClient {
  return {
    encrypt: client.encrypt.bind(client),
    decrypt: client.decrypt.bind(client),
    getCryptoKey: client.getCryptoKey.bind(client),
    listCryptoKeyVersions: client.listCryptoKeyVersions.bind(client),
    close: async () => undefined,
  } as KmsClient
}

/** Clears the stand-in's faults as soon as one Encrypt or Decrypt with a fault has been answered. */
function clearingFaultsAfterOneCall(client: KmsClient, standIn: KmsStandIn): KmsClient {
  const clearAfter =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await call(...args)
      } finally {
        if (standIn.requests.some((r) => r.faults.length > 0)) standIn.clearFaults()
      }
    }
  const methods = bound(client) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  return { ...methods, encrypt: clearAfter(methods.encrypt!), decrypt: clearAfter(methods.decrypt!) } as unknown as KmsClient
}

function assertNoSecrets(entries: readonly LoggedLine[], ciphertext: Buffer): void {
  const logged = JSON.stringify(entries)
  for (const secret of [dek, aad, ciphertext]) {
    for (const encoding of ['hex', 'base64', 'utf8'] as const) assert.ok(!logged.includes(secret.toString(encoding)), `logged ${encoding} of a secret`)
  }
}
