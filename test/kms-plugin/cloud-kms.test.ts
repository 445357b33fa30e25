/**
 * `keywrap kms-plugin` on a gcp-kms:// key, the real Cloud KMS client talking to the stand-in: the
 * round trip, a rotation seen through Status, an outage turning healthz away from ok and back, and
 * SIGTERM while Encrypts wait on a slow KMS.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { status as GrpcStatus } from '@grpc/grpc-js'
import { KmsStandIn, type RunningKmsStandIn } from '../support/kms-stand-in.js'
import { assertSigtermDrains, eventually, kmsClient, pluginHome, startPlugin, type KmsClient, type RunningPlugin } from '../support/kms-plugin.js'

const KEY = 'projects/test/locations/global/keyRings/kubernetes/cryptoKeys/secrets'
const SEED = Buffer.alloc(32, 0x3c)

describe('keywrap kms-plugin on Cloud KMS (the stand-in)', () => {
  const kms = new KmsStandIn()
  let running: RunningKmsStandIn
  let home: string
  let env: Record<string, string>
  let plugin: RunningPlugin
  let client: KmsClient

  before(async () => {
    kms.createKey(KEY)
    running = await kms.start()
    ;({ home, env } = await pluginHome(
      { kubernetes: `gcp-kms://${KEY}` },
      {
        KMS_EMULATOR_HOST: running.address,
        GOOGLE_CLOUD_PROJECT: 'test',
        KEYWRAP_KEY_REFRESH_SECONDS: '1',
        KEYWRAP_KMS_BUDGET_MS: '2000',
        KEYWRAP_KMS_TIMEOUT_MS: '1000',
      },
    ))
    plugin = await startPlugin(join(home, 'kms.sock'), ['--alias', 'kubernetes', '--grace', '4'], env)
    client = kmsClient(plugin.socket)
  })
  after(async () => {
    client?.close()
    await plugin?.stop()
    await running?.close()
  })

  test('Encrypt is one KMS Encrypt; a Decrypt of a seed it made is served from the cache; Status calls no KMS', async () => {
    kms.resetCounters()
    const encrypted = await client.encrypt(SEED)
    assert.deepEqual(await client.decrypt(encrypted), SEED)
    const [first, second] = await Promise.all([client.encrypt(SEED), client.encrypt(SEED)])
    assert.notDeepEqual(first.ciphertext, second.ciphertext)
    assert.ok(!encrypted.key_id.includes('projects/'), 'the key_id does not show the KMS resource name')
    assert.equal(kms.calls.Encrypt, 3)
    assert.equal(kms.calls.Decrypt, 0)
    const reads = kms.calls.GetCryptoKey
    await Promise.all(Array.from({ length: 20 }, () => client.status()))
    assert.ok(kms.calls.GetCryptoKey - reads <= 2, 'Status answers from the refresher, not with a KMS call per poll')
  })

  test('a rotation in Cloud KMS changes the key_id within a refresh; older ciphertexts still decrypt', async () => {
    const before = await client.status()
    const old = await client.encrypt(SEED)
    kms.rotate(KEY)
    assert.ok(await eventually(async () => (await client.status()).key_id !== before.key_id, 5000))
    const fresh = await client.encrypt(SEED)
    assert.equal(fresh.key_id, (await client.status()).key_id)
    assert.notEqual(fresh.key_id, old.key_id)
    assert.deepEqual(await client.decrypt(old), SEED)
    assert.deepEqual(await client.decrypt(fresh), SEED)
    await assert.rejects(
      client.decrypt({ ciphertext: fresh.ciphertext, key_id: 'keywrap-v1-unknown' }),
      (error: any) => error.code === GrpcStatus.INVALID_ARGUMENT,
    )
  })

  test('an outage of Cloud KMS beyond the grace turns healthz away from ok, saying why, and back when it ends', async () => {
    assert.equal((await client.status()).healthz, 'ok')
    kms.setFaults({ methods: ['GetCryptoKey', 'ListCryptoKeyVersions'], unavailableRate: 1 })
    try {
      assert.ok(await eventually(async () => (await client.status()).healthz !== 'ok', 10_000), 'healthz leaves ok')
      const { healthz, key_id } = await client.status()
      assert.match(healthz, /has not been read from its provider for \d+ s \(grace 4 s\)/)
      assert.ok(!healthz.includes('projects/'), 'healthz does not show the KMS resource name')
      assert.match(healthz, /UNAVAILABLE|unavailable/i)
      assert.ok(key_id, 'the last key_id is still given')
    } finally {
      kms.clearFaults()
    }
    assert.ok(await eventually(async () => (await client.status()).healthz === 'ok', 10_000), 'healthz comes back to ok')
  })

  test('SIGTERM while Encrypts wait on a slow KMS: they finish, the socket is removed, exit 0', async () => {
    const socket = join(home, 'draining.sock')
    const draining = await startPlugin(socket, ['--alias', 'kubernetes'], env)
    await assertSigtermDrains(kms, draining)
  })
})
