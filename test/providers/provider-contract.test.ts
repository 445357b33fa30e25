// One contract for every KeyProvider: the same cases against the local keyring and against Cloud KMS
// (the real client talking to the stand-in on loopback), each through a small adapter that changes
// the key's versions the way its operators would.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import { KeywrapError } from '../../src/errors.js'
import type { KeyProvider } from '../../src/providers/key-provider.js'
import { GcpKmsKeyProvider } from '../../src/providers/gcp-kms/gcp-kms-provider.js'
import { createKmsClient } from '../../src/providers/gcp-kms/kms-client.js'
import { KeyringFile } from '../../src/providers/local/keyring-file.js'
import { LocalKeyProvider } from '../../src/providers/local/local-provider.js'
import { KmsStandIn, type RunningKmsStandIn } from '../support/kms-stand-in.js'

/** A provider on a fresh key, and what its operators can do to that key. Each change is followed by a refresh. */
interface Subject {
  readonly provider: KeyProvider
  rotate(): Promise<number>
  disable(version: number): Promise<void>
  enable(version: number): Promise<void>
  destroy?(version: number): Promise<void>
  scheduleDestruction?(version: number): Promise<void>
  /** Disables the version at the source without telling the provider. */
  disableBehindItsBack?(version: number): Promise<void>
  close(): Promise<void>
}

interface Adapter {
  readonly name: string
  readonly provider: 'local' | 'gcp-kms'
  /** What the adapter's key source supports; the cases that need more are skipped for it. */
  readonly supports: { readonly destroy: boolean; readonly scheduleDestruction: boolean; readonly staleMetadata: boolean }
  setUp(): Promise<void>
  subject(): Promise<Subject>
  tearDown(): Promise<void>
}

const localAdapter: Adapter = (() => {
  let keySequence = 0
  return {
    name: 'local keyring (LocalKeyProvider)',
    provider: 'local',
    // The keyring can only enable and disable; the provider watches its file, so it is never stale for long.
    supports: { destroy: false, scheduleDestruction: false, staleMetadata: false },
    async setUp() {},
    async subject() {
      const home = await mkdtemp(join(tmpdir(), 'keywrap-contract-'))
      const keyring = new KeyringFile(home)
      const name = `contract-${++keySequence}`
      await keyring.ensureKeys([name])
      const provider = new LocalKeyProvider(name, keyring)
      await provider.refresh()
      const setState = async (version: number, state: 'ENABLED' | 'DISABLED') => {
        await keyring.setState(name, version, state)
        await provider.refresh()
      }
      return {
        provider,
        async rotate() {
          const version = await keyring.rotate(name)
          await provider.refresh()
          return version
        },
        disable: (version) => setState(version, 'DISABLED'),
        enable: (version) => setState(version, 'ENABLED'),
        async close() {
          await provider.close()
          await rm(home, { recursive: true, force: true })
        },
      }
    },
    async tearDown() {},
  }
})()

const cloudKmsAdapter: Adapter = (() => {
  const standIn = new KmsStandIn()
  let server: RunningKmsStandIn
  let keySequence = 0
  return {
    name: 'Cloud KMS (GcpKmsKeyProvider → stand-in)',
    provider: 'gcp-kms',
    supports: { destroy: true, scheduleDestruction: true, staleMetadata: true },
    async setUp() {
      server = await standIn.start()
    },
    async subject() {
      const keyName = `projects/contract/locations/global/keyRings/keywrap/cryptoKeys/contract-${++keySequence}`
      standIn.createKey(keyName)
      const client = createKmsClient({ emulatorHost: server.address })
      const provider = new GcpKmsKeyProvider({ keyName, client, callTimeoutMs: 500, totalBudgetMs: 1000 })
      await provider.refresh()
      const setState = async (version: number, state: 'ENABLED' | 'DISABLED' | 'DESTROY_SCHEDULED' | 'DESTROYED') => {
        standIn.setState(keyName, version, state)
        await provider.refresh()
      }
      return {
        provider,
        async rotate() {
          const version = standIn.rotate(keyName)
          await provider.refresh()
          return version
        },
        disable: (version) => setState(version, 'DISABLED'),
        enable: (version) => setState(version, 'ENABLED'),
        destroy: (version) => setState(version, 'DESTROYED'),
        scheduleDestruction: (version) => setState(version, 'DESTROY_SCHEDULED'),
        async disableBehindItsBack(version) {
          standIn.setState(keyName, version, 'DISABLED')
        },
        close: () => provider.close(),
      }
    },
    async tearDown() {
      await server.close()
    },
  }
})()

async function errorCode(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => (error instanceof KeywrapError ? `${error.code} ${error.status}` : `not a KeywrapError: ${String(error)}`),
  )
}

/** The reason to skip a case the adapter's key source cannot set up, or false. */
function unsupported(supported: boolean, what: string): string | false {
  return supported ? false : `this key source cannot ${what}`
}

const dek = Buffer.alloc(32, 0xa5)
const aad = Buffer.from('keywrap/aad/v1 tenant=acme purpose=contract')

for (const adapter of [localAdapter, cloudKmsAdapter]) {
  describe(`KeyProvider contract: ${adapter.name}`, () => {
    let subject: Subject

    before(() => adapter.setUp())
    after(() => adapter.tearDown())
    beforeEach(async () => {
      subject = await adapter.subject()
    })
    afterEach(() => subject.close())

    it('describes its key after refresh: uri, provider, one enabled primary version', () => {
      const description = subject.provider.describe()
      assert.equal(description.uri, subject.provider.uri)
      assert.ok(description.uri.startsWith(`${adapter.provider}://`))
      assert.equal(description.provider, adapter.provider)
      assert.equal(description.primaryVersion, 1)
      assert.deepEqual(
        description.versions.map((v) => [v.version, v.state]),
        [[1, 'ENABLED']],
      )
      assert.ok(description.versions[0]!.name.length > 0)
      assert.ok(!Number.isNaN(Date.parse(description.refreshedAt)))
    })

    it('round-trips a DEK with AAD under the primary version', async () => {
      const { ciphertext, version } = await subject.provider.encrypt(dek, aad)
      assert.equal(version, subject.provider.describe().primaryVersion)
      assert.ok(!ciphertext.includes(dek), 'the ciphertext does not contain the DEK')
      const decrypted = await subject.provider.decrypt(ciphertext, aad, version)
      assert.deepEqual(decrypted.plaintext, dek)
      if (decrypted.version !== undefined) assert.equal(decrypted.version, version)

      // The smallest and largest keys POST /wrap accepts.
      for (const key of [Buffer.from([7]), Buffer.alloc(64, 7)]) {
        const wrapped = await subject.provider.encrypt(key, aad)
        assert.deepEqual((await subject.provider.decrypt(wrapped.ciphertext, aad, wrapped.version)).plaintext, key)
      }
    })

    it('encrypts afresh each time', async () => {
      const first = await subject.provider.encrypt(dek, aad)
      const second = await subject.provider.encrypt(dek, aad)
      assert.notDeepEqual(first.ciphertext, second.ciphertext)
    })

    it('a different AAD, no AAD, or a damaged ciphertext cannot unwrap (cannot_unwrap, 422)', async () => {
      const { ciphertext, version } = await subject.provider.encrypt(dek, aad)
      assert.equal(await errorCode(subject.provider.decrypt(ciphertext, Buffer.from('keywrap/aad/v1 tenant=other'), version)), 'cannot_unwrap 422')
      assert.equal(await errorCode(subject.provider.decrypt(ciphertext, Buffer.alloc(0), version)), 'cannot_unwrap 422')
      const damaged = Buffer.from(ciphertext)
      damaged[damaged.length - 1]! ^= 0x01
      assert.equal(await errorCode(subject.provider.decrypt(damaged, aad, version)), 'cannot_unwrap 422')
    })

    it('rotation makes a new primary; ciphertexts of the old version still decrypt', async () => {
      const old = await subject.provider.encrypt(dek, aad)
      const rotated = await subject.rotate()
      assert.equal(rotated, 2)
      assert.equal(subject.provider.describe().primaryVersion, 2)
      const fresh = await subject.provider.encrypt(dek, aad)
      assert.equal(fresh.version, 2)
      assert.deepEqual((await subject.provider.decrypt(old.ciphertext, aad, old.version)).plaintext, dek)
      assert.deepEqual((await subject.provider.decrypt(fresh.ciphertext, aad, fresh.version)).plaintext, dek)
    })

    it('a disabled version is refused (key_version_not_enabled, 409) until it is enabled again', async () => {
      const old = await subject.provider.encrypt(dek, aad)
      await subject.rotate()
      await subject.disable(old.version)
      assert.equal(subject.provider.describe().versions.find((v) => v.version === old.version)?.state, 'DISABLED')
      assert.equal(await errorCode(subject.provider.decrypt(old.ciphertext, aad, old.version)), 'key_version_not_enabled 409')
      await subject.enable(old.version)
      assert.deepEqual((await subject.provider.decrypt(old.ciphertext, aad, old.version)).plaintext, dek)
    })

    it(
      'a version scheduled for destruction is refused (key_version_not_enabled, 409)',
      { skip: unsupported(adapter.supports.scheduleDestruction, 'schedule destruction') },
      async () => {
        const old = await subject.provider.encrypt(dek, aad)
        await subject.rotate()
        await subject.scheduleDestruction!(old.version)
        assert.equal(await errorCode(subject.provider.decrypt(old.ciphertext, aad, old.version)), 'key_version_not_enabled 409')
      },
    )

    it('a destroyed version is refused (key_version_destroyed, 409)', { skip: unsupported(adapter.supports.destroy, 'destroy versions') }, async () => {
      const old = await subject.provider.encrypt(dek, aad)
      await subject.rotate()
      await subject.destroy!(old.version)
      assert.equal(await errorCode(subject.provider.decrypt(old.ciphertext, aad, old.version)), 'key_version_destroyed 409')
    })

    it(
      'a version disabled at the source before the provider refreshed is refused by the source (409)',
      { skip: unsupported(adapter.supports.staleMetadata, 'change behind the provider’s back') },
      async () => {
        const old = await subject.provider.encrypt(dek, aad)
        await subject.rotate()
        await subject.disableBehindItsBack!(old.version)
        assert.equal(subject.provider.describe().versions.find((v) => v.version === old.version)?.state, 'ENABLED', 'still stale')
        assert.equal(await errorCode(subject.provider.decrypt(old.ciphertext, aad, old.version)), 'key_version_not_enabled 409')
      },
    )

    it('probe() makes a real round trip and resolves', async () => {
      await subject.provider.probe()
      await subject.provider.probe()
    })
  })
}
