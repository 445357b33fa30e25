// Exercises the Cloud KMS stand-in through the real @google-cloud/kms client over gRPC.
import assert from 'node:assert/strict'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import { KeyManagementServiceClient } from '@google-cloud/kms'
import { grpc, type CallOptions } from 'google-gax'
import { createHash, createPublicKey, verify } from 'node:crypto'
import { crc32c } from '../../src/crypto/crc32c.js'
import { KmsStandIn, type RunningKmsStandIn } from './kms-stand-in.js'

// Belt and braces: the client options below already keep google-auth-library from
// looking for credentials, but if anything did, it must not probe the GCE metadata server.
process.env.METADATA_SERVER_DETECTION = 'none'

const { status } = grpc

/**
 * How a real KeyManagementServiceClient must be configured for the stand-in
 * (google-gax 5 / @google-cloud/kms 5.7):
 * - `sslCreds: grpc.credentials.createInsecure()` (grpc from google-gax, i.e. the
 *   @grpc/grpc-js copy the client uses): GrpcClient._getCredentials returns it
 *   as-is, so no auth client and no per-call auth headers.
 * - `universeDomain: 'googleapis.com'`: without it createStub still calls
 *   auth.getUniverseDomain(), which runs Application Default Credentials
 *   discovery (reads GOOGLE_APPLICATION_CREDENTIALS / gcloud's ADC file and, off
 *   GCE, probes the metadata server, emitting a MetadataLookupWarning).
 */
function newClient(port: number): KeyManagementServiceClient {
  return new KeyManagementServiceClient({
    apiEndpoint: '127.0.0.1',
    port,
    sslCreds: grpc.credentials.createInsecure(),
    universeDomain: 'googleapis.com',
    projectId: 'test-project',
  })
}

/**
 * One attempt, short deadline. Prefer `retry: null` over `maxRetries: 0`: the
 * latter turns every failure into DEADLINE_EXCEEDED ("Exceeded maximum number of
 * retries") and gax writes it into the client's shared per-method retry settings,
 * disabling retries for every later call on that client.
 */
function once(timeout = 2000): CallOptions {
  return { retry: null, timeout }
}

let keySeq = 0
function uniqueKeyName(): string {
  keySeq += 1
  return `projects/test-project/locations/global/keyRings/ring/cryptoKeys/key-${keySeq}`
}

interface GrpcLikeError {
  code?: number
  details?: string
  message?: string
}

async function assertGrpcError(promise: Promise<unknown>, code: number, details?: string | RegExp): Promise<void> {
  await assert.rejects(promise, (error: GrpcLikeError) => {
    assert.equal(error.code, code, `expected gRPC code ${code}, got ${error.code}: ${error.message}`)
    if (typeof details === 'string') assert.equal(error.details, details)
    if (details instanceof RegExp) assert.match(error.details ?? error.message ?? '', details)
    return true
  })
}

function crcValue(field: { value?: unknown } | null | undefined): number {
  assert.ok(field, 'checksum field missing')
  return Number(field.value)
}

describe('crc32c', () => {
  it('matches the Castagnoli check value and RFC 3720 vectors', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
    assert.equal(crc32c(new Uint8Array(0)), 0)
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa)
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43)
  })
})

describe('KMS stand-in with the real @google-cloud/kms client', () => {
  const standIn = new KmsStandIn()
  let server: RunningKmsStandIn
  let client: KeyManagementServiceClient
  let authLookups = 0
  const warnings: Error[] = []
  const onWarning = (warning: Error) => warnings.push(warning)

  before(async () => {
    process.on('warning', onWarning)
    server = await standIn.start()
    client = newClient(server.port)
    const getClient = client.auth.getClient.bind(client.auth)
    client.auth.getClient = async () => {
      authLookups += 1
      return getClient()
    }
  })

  after(async () => {
    await client.close()
    await server.close()
    process.off('warning', onWarning)
  })

  beforeEach(() => {
    standIn.clearFaults()
    standIn.resetCounters()
    standIn.deniedKeys.clear()
  })

  afterEach(() => {
    assert.equal(standIn.parkedCalls, 0, 'a call is still parked in the stand-in')
  })

  it('listens on 127.0.0.1 and never lets the client look for Google credentials', async () => {
    const key = uniqueKeyName()
    standIn.createKey(key)
    await client.getCryptoKey({ name: key }, once())
    assert.match(server.address, /^127\.0\.0\.1:\d+$/)
    assert.equal(server.address, `127.0.0.1:${server.port}`)
    assert.equal(authLookups, 0)
    assert.deepEqual(
      warnings.filter((w) => w.name === 'MetadataLookupWarning'),
      [],
    )
  })

  describe('Encrypt / Decrypt', () => {
    it('round-trips with AAD and verifies every CRC32C field', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      const plaintext = Buffer.from('a 32-byte data encryption key!!!')
      const aad = Buffer.from('tenant=acme')

      const [encrypted] = await client.encrypt(
        {
          name: key,
          plaintext,
          additionalAuthenticatedData: aad,
          plaintextCrc32c: { value: crc32c(plaintext) },
          additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
        },
        once(),
      )
      assert.equal(encrypted.name, `${key}/cryptoKeyVersions/1`)
      assert.equal(encrypted.verifiedPlaintextCrc32c, true)
      assert.equal(encrypted.verifiedAdditionalAuthenticatedDataCrc32c, true)
      assert.equal(encrypted.protectionLevel, 'SOFTWARE')
      const ciphertext = Buffer.from(encrypted.ciphertext as Uint8Array)
      assert.equal(crcValue(encrypted.ciphertextCrc32c), crc32c(ciphertext))
      assert.ok(!ciphertext.includes(plaintext), 'ciphertext must not contain the plaintext')

      const [decrypted] = await client.decrypt(
        {
          name: key,
          ciphertext,
          additionalAuthenticatedData: aad,
          ciphertextCrc32c: { value: crc32c(ciphertext) },
          additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
        },
        once(),
      )
      assert.deepEqual(Buffer.from(decrypted.plaintext as Uint8Array), plaintext)
      assert.equal(crcValue(decrypted.plaintextCrc32c), crc32c(plaintext))
      assert.equal(decrypted.usedPrimary, true)
      assert.equal(decrypted.protectionLevel, 'SOFTWARE')
    })

    it('reports verified_* false when no checksum was sent', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      const [encrypted] = await client.encrypt({ name: key, plaintext: Buffer.from('x') }, once())
      assert.equal(encrypted.verifiedPlaintextCrc32c, false)
      assert.equal(encrypted.verifiedAdditionalAuthenticatedDataCrc32c, false)
    })

    it('rejects request checksums that do not match, naming the field', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      const plaintext = Buffer.from('secret')
      await assertGrpcError(
        client.encrypt({ name: key, plaintext, plaintextCrc32c: { value: crc32c(plaintext) + 1 } }, once()),
        status.INVALID_ARGUMENT,
        'The checksum in field plaintext_crc32c did not match the data in field plaintext.',
      )
      await assertGrpcError(
        client.encrypt({ name: key, plaintext, additionalAuthenticatedData: Buffer.from('a'), additionalAuthenticatedDataCrc32c: { value: 1 } }, once()),
        status.INVALID_ARGUMENT,
        'The checksum in field additional_authenticated_data_crc32c did not match the data in field additional_authenticated_data.',
      )
      const [encrypted] = await client.encrypt({ name: key, plaintext }, once())
      await assertGrpcError(
        client.decrypt({ name: key, ciphertext: encrypted.ciphertext, ciphertextCrc32c: { value: 7 } }, once()),
        status.INVALID_ARGUMENT,
        'The checksum in field ciphertext_crc32c did not match the data in field ciphertext.',
      )
    })

    it('binds the AAD: decrypting with a different one is INVALID_ARGUMENT', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      const [encrypted] = await client.encrypt({ name: key, plaintext: Buffer.from('dek'), additionalAuthenticatedData: Buffer.from('tenant=a') }, once())
      await assertGrpcError(
        client.decrypt({ name: key, ciphertext: encrypted.ciphertext, additionalAuthenticatedData: Buffer.from('tenant=b') }, once()),
        status.INVALID_ARGUMENT,
        'Decryption failed: the ciphertext is invalid.',
      )
      await assertGrpcError(
        client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once()),
        status.INVALID_ARGUMENT,
        'Decryption failed: the ciphertext is invalid.',
      )
    })

    it('rejects garbage ciphertext and ciphertext made under another key', async () => {
      const key = uniqueKeyName()
      const otherKey = uniqueKeyName()
      standIn.createKey(key)
      standIn.createKey(otherKey)
      await assertGrpcError(
        client.decrypt({ name: key, ciphertext: Buffer.from('not a ciphertext at all, really not') }, once()),
        status.INVALID_ARGUMENT,
        'Decryption failed: the ciphertext is invalid.',
      )
      const [encrypted] = await client.encrypt({ name: otherKey, plaintext: Buffer.from('x') }, once())
      await assertGrpcError(
        client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once()),
        status.INVALID_ARGUMENT,
        "Decryption failed: verify that 'name' refers to the correct CryptoKey.",
      )
    })

    it('enforces the 64 KiB limits on plaintext and AAD', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      await client.encrypt({ name: key, plaintext: Buffer.alloc(65536) }, once())
      await assertGrpcError(
        client.encrypt({ name: key, plaintext: Buffer.alloc(65537) }, once()),
        status.INVALID_ARGUMENT,
        'Request field plaintext must have length of at least 0, but not more than 65536. Provided value had length 65537.',
      )
      await assertGrpcError(
        client.encrypt({ name: key, plaintext: Buffer.from('x'), additionalAuthenticatedData: Buffer.alloc(65537) }, once()),
        status.INVALID_ARGUMENT,
        /^Request field additional_authenticated_data must have length/,
      )
    })

    it('encrypts with an explicit CryptoKeyVersion when named', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key, { versions: 2 })
      const [encrypted] = await client.encrypt({ name: `${key}/cryptoKeyVersions/1`, plaintext: Buffer.from('x') }, once())
      assert.equal(encrypted.name, `${key}/cryptoKeyVersions/1`)
      const [decrypted] = await client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once())
      assert.equal(decrypted.usedPrimary, false)
    })
  })

  describe('key versions and rotation', () => {
    it('rotate() makes a new primary; old ciphertext still decrypts with used_primary false', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      const plaintext = Buffer.from('before rotation')
      const [before] = await client.encrypt({ name: key, plaintext }, once())

      assert.equal(standIn.rotate(key), 2)
      assert.equal(standIn.getKey(key).primary, 2)

      const [after] = await client.encrypt({ name: key, plaintext }, once())
      assert.equal(after.name, `${key}/cryptoKeyVersions/2`)
      const [old] = await client.decrypt({ name: key, ciphertext: before.ciphertext }, once())
      assert.deepEqual(Buffer.from(old.plaintext as Uint8Array), plaintext)
      assert.equal(old.usedPrimary, false)
      const [fresh] = await client.decrypt({ name: key, ciphertext: after.ciphertext }, once())
      assert.equal(fresh.usedPrimary, true)
    })

    it('setPrimary() moves the primary back', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key, { versions: 3 })
      standIn.setPrimary(key, 1)
      const [encrypted] = await client.encrypt({ name: key, plaintext: Buffer.from('x') }, once())
      assert.equal(encrypted.name, `${key}/cryptoKeyVersions/1`)
    })

    it('answers FAILED_PRECONDITION when the version to use is not enabled', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      const [encrypted] = await client.encrypt({ name: key, plaintext: Buffer.from('x') }, once())
      standIn.rotate(key)
      standIn.setState(key, 1, 'DISABLED')
      await assertGrpcError(
        client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once()),
        status.FAILED_PRECONDITION,
        `${key}/cryptoKeyVersions/1 is not enabled, current state is: DISABLED.`,
      )

      standIn.setState(key, 2, 'DISABLED')
      await assertGrpcError(
        client.encrypt({ name: key, plaintext: Buffer.from('x') }, once()),
        status.FAILED_PRECONDITION,
        `${key}/cryptoKeyVersions/2 is not enabled, current state is: DISABLED.`,
      )

      standIn.setState(key, 1, 'DESTROYED')
      await assertGrpcError(
        client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once()),
        status.FAILED_PRECONDITION,
        `${key}/cryptoKeyVersions/1 is not enabled, current state is: DESTROYED.`,
      )
    })

    it('re-enabling a DISABLED version makes its ciphertext decryptable again', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      const [encrypted] = await client.encrypt({ name: key, plaintext: Buffer.from('x') }, once())
      standIn.setState(key, 1, 'DISABLED')
      standIn.setState(key, 1, 'ENABLED')
      const [decrypted] = await client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once())
      assert.equal(Buffer.from(decrypted.plaintext as Uint8Array).toString(), 'x')
    })

    it('GetCryptoKey shows the primary, purpose and rotation schedule', async () => {
      const key = uniqueKeyName()
      const nextRotationTime = new Date('2030-01-01T00:00:00Z')
      standIn.createKey(key, { versions: 2, rotationPeriodSeconds: 7776000, nextRotationTime })
      const [before] = await client.getCryptoKey({ name: key }, once())
      assert.equal(before.name, key)
      assert.equal(before.purpose, 'ENCRYPT_DECRYPT')
      assert.equal(before.primary?.name, `${key}/cryptoKeyVersions/2`)
      assert.equal(before.primary?.state, 'ENABLED')
      assert.equal(before.primary?.protectionLevel, 'SOFTWARE')
      assert.equal(before.primary?.algorithm, 'GOOGLE_SYMMETRIC_ENCRYPTION')
      assert.equal(Number(before.rotationPeriod?.seconds), 7776000)
      assert.equal(Number(before.nextRotationTime?.seconds), nextRotationTime.getTime() / 1000)
      assert.ok(Number(before.createTime?.seconds) > 0)
      assert.equal(before.versionTemplate?.protectionLevel, 'SOFTWARE')

      standIn.rotate(key)
      const [after] = await client.getCryptoKey({ name: key }, once())
      assert.equal(after.primary?.name, `${key}/cryptoKeyVersions/3`)
      assert.ok(Number(after.nextRotationTime?.seconds) > Date.now() / 1000 + 7776000 - 60)
    })

    it('ListCryptoKeyVersions lists every version with its state, filters and pages', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key, { versions: ['DESTROYED', 'DISABLED', 'DESTROY_SCHEDULED', 'ENABLED'] })
      const [versions] = await client.listCryptoKeyVersions({ parent: key }, once())
      assert.deepEqual(
        versions.map((v) => [v.name, v.state]),
        [
          [`${key}/cryptoKeyVersions/1`, 'DESTROYED'],
          [`${key}/cryptoKeyVersions/2`, 'DISABLED'],
          [`${key}/cryptoKeyVersions/3`, 'DESTROY_SCHEDULED'],
          [`${key}/cryptoKeyVersions/4`, 'ENABLED'],
        ],
      )
      assert.ok(versions[0]?.destroyEventTime, 'DESTROYED version has destroyEventTime')
      assert.ok(Number(versions[2]?.destroyTime?.seconds) > Date.now() / 1000, 'destruction is scheduled')

      const [enabled] = await client.listCryptoKeyVersions({ parent: key, filter: 'state=ENABLED' }, once())
      assert.deepEqual(
        enabled.map((v) => v.name),
        [`${key}/cryptoKeyVersions/4`],
      )

      standIn.resetCounters()
      const [paged] = await client.listCryptoKeyVersions({ parent: key, pageSize: 2 }, once())
      assert.equal(paged.length, 4)
      assert.equal(standIn.calls.ListCryptoKeyVersions, 2, 'the client followed next_page_token')
    })

    it('GetCryptoKeyVersion returns one version', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key, { versions: 2 })
      standIn.setState(key, 1, 'DISABLED')
      const [version] = await client.getCryptoKeyVersion({ name: `${key}/cryptoKeyVersions/1` }, once())
      assert.equal(version.state, 'DISABLED')
      await assertGrpcError(
        client.getCryptoKeyVersion({ name: `${key}/cryptoKeyVersions/9` }, once()),
        status.NOT_FOUND,
        `Resource '${key}/cryptoKeyVersions/9' was not found.`,
      )
    })
  })

  describe('AsymmetricSign / GetPublicKey (EC_SIGN_P256_SHA256)', () => {
    const digestOf = (data: Buffer) => createHash('sha256').update(data).digest()

    it('signs the SHA-256 digest with a real P-256 key: node:crypto verifies it over the data with the served public key', async () => {
      const version = standIn.createSigningKey(uniqueKeyName())
      const data = Buffer.from('checkpoint statement')
      const digest = digestOf(data)
      const [signed] = await client.asymmetricSign({ name: version, digest: { sha256: digest }, digestCrc32c: { value: crc32c(digest) } }, once())
      const signature = Buffer.from(signed.signature as Uint8Array)
      assert.equal(signed.verifiedDigestCrc32c, true)
      assert.equal(signed.name, version)
      assert.equal(crcValue(signed.signatureCrc32c), crc32c(signature))
      const [publicKey] = await client.getPublicKey({ name: version }, once())
      assert.equal(publicKey.algorithm, 'EC_SIGN_P256_SHA256')
      assert.equal(crcValue(publicKey.pemCrc32c), crc32c(Buffer.from(publicKey.pem!, 'utf8')))
      const key = createPublicKey(publicKey.pem!)
      assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1')
      assert.equal(verify('sha256', data, key, signature), true)
      assert.equal(verify('sha256', Buffer.from('another statement'), key, signature), false)
      assert.deepEqual([standIn.calls.AsymmetricSign, standIn.calls.GetPublicKey], [1, 1])
    })

    it('each version has its own key pair; no digest checksum: verifiedDigestCrc32c false', async () => {
      const name = uniqueKeyName()
      standIn.createSigningKey(name, 2)
      const pems = await Promise.all([1, 2].map(async (v) => (await client.getPublicKey({ name: `${name}/cryptoKeyVersions/${v}` }, once()))[0].pem))
      assert.notEqual(pems[0], pems[1])
      const [signed] = await client.asymmetricSign({ name: `${name}/cryptoKeyVersions/2`, digest: { sha256: digestOf(Buffer.from('x')) } }, once())
      assert.equal(signed.verifiedDigestCrc32c, false)
      assert.equal(verify('sha256', Buffer.from('x'), createPublicKey(pems[1]!), Buffer.from(signed.signature as Uint8Array)), true)
    })

    it('refuses a wrong checksum, a digest of another size, a disabled version, an unknown one and a denied key', async () => {
      const name = uniqueKeyName()
      const version = standIn.createSigningKey(name)
      const digest = digestOf(Buffer.from('x'))
      await assertGrpcError(
        client.asymmetricSign({ name: version, digest: { sha256: digest }, digestCrc32c: { value: crc32c(digest) ^ 1 } }, once()),
        status.INVALID_ARGUMENT,
        /digest_crc32c/,
      )
      await assertGrpcError(client.asymmetricSign({ name: version, digest: { sha384: Buffer.alloc(48) } }, once()), status.INVALID_ARGUMENT, /digest\.sha256/)
      await assertGrpcError(client.asymmetricSign({ name: `${name}/cryptoKeyVersions/2`, digest: { sha256: digest } }, once()), status.NOT_FOUND)
      standIn.setSigningKeyState(name, 1, 'DISABLED')
      await assertGrpcError(
        client.asymmetricSign({ name: version, digest: { sha256: digest } }, once()),
        status.FAILED_PRECONDITION,
        /is not enabled, current state is: DISABLED/,
      )
      standIn.deniedKeys.add(name)
      await assertGrpcError(client.getPublicKey({ name: version }, once()), status.PERMISSION_DENIED, /cloudkms\.cryptoKeyVersions\.viewPublicKey/)
    })
  })

  describe('errors', () => {
    it('NOT_FOUND for an unknown key', async () => {
      const key = uniqueKeyName()
      const notFound = `Resource '${key}' was not found.`
      await assertGrpcError(client.encrypt({ name: key, plaintext: Buffer.from('x') }, once()), status.NOT_FOUND, notFound)
      await assertGrpcError(client.decrypt({ name: key, ciphertext: Buffer.alloc(64) }, once()), status.NOT_FOUND, notFound)
      await assertGrpcError(client.getCryptoKey({ name: key }, once()), status.NOT_FOUND, notFound)
      await assertGrpcError(client.listCryptoKeyVersions({ parent: key }, once()), status.NOT_FOUND, notFound)
    })

    it('INVALID_ARGUMENT for malformed or wrong-type names', async () => {
      await assertGrpcError(
        client.encrypt({ name: 'projects/p/keyRings/r/cryptoKeys/k', plaintext: Buffer.from('x') }, once()),
        status.INVALID_ARGUMENT,
        'Resource name [projects/p/keyRings/r/cryptoKeys/k] does not match any known resource name pattern.',
      )
      await assertGrpcError(client.getCryptoKey({ name: 'nonsense' }, once()), status.INVALID_ARGUMENT, /^Resource name 'nonsense' does not match pattern /)
      const key = uniqueKeyName()
      standIn.createKey(key)
      await assertGrpcError(
        client.decrypt({ name: `${key}/cryptoKeyVersions/1`, ciphertext: Buffer.alloc(64) }, once()),
        status.INVALID_ARGUMENT,
        `${key}/cryptoKeyVersions/1 is not a valid resource type for this request.`,
      )
    })

    it('PERMISSION_DENIED for keys in deniedKeys, before revealing whether they exist', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      const missing = uniqueKeyName()
      standIn.deniedKeys.add(key)
      standIn.deniedKeys.add(missing)
      await assertGrpcError(
        client.encrypt({ name: key, plaintext: Buffer.from('x') }, once()),
        status.PERMISSION_DENIED,
        `Permission 'cloudkms.cryptoKeyVersions.useToEncrypt' denied on resource '${key}' (or it may not exist).`,
      )
      await assertGrpcError(
        client.decrypt({ name: missing, ciphertext: Buffer.alloc(64) }, once()),
        status.PERMISSION_DENIED,
        `Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied on resource '${missing}' (or it may not exist).`,
      )
      await assertGrpcError(client.getCryptoKey({ name: key }, once()), status.PERMISSION_DENIED, /cloudkms\.cryptoKeys\.get/)
    })

    it('UNIMPLEMENTED for RPCs the stand-in does not serve, still counted', async () => {
      await assertGrpcError(client.listKeyRings({ parent: 'projects/p/locations/global' }, { ...once(), autoPaginate: false }), status.UNIMPLEMENTED)
      assert.equal(standIn.calls.ListKeyRings, 1)
    })
  })

  describe('faults', () => {
    it('unavailableNext scoped to Decrypt fails exactly the next N Decrypt calls', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      standIn.setFaults({ unavailableNext: 2, methods: ['Decrypt'] })
      const [encrypted] = await client.encrypt({ name: key, plaintext: Buffer.from('x') }, once())
      for (let i = 0; i < 2; i++) {
        await assertGrpcError(
          client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once()),
          status.UNAVAILABLE,
          'The service is currently unavailable.',
        )
      }
      await client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once())
      assert.equal(standIn.faults.unavailableNext, 0)
      assert.deepEqual(
        standIn.requests.map((r) => [r.method, r.faults]),
        [
          ['Encrypt', []],
          ['Decrypt', ['unavailable']],
          ['Decrypt', ['unavailable']],
          ['Decrypt', []],
        ],
      )
    })

    it("the client's default retry policy rides out UNAVAILABLE but not RESOURCE_EXHAUSTED", async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      standIn.faults.unavailableNext = 2
      await client.encrypt({ name: key, plaintext: Buffer.from('x') }, { timeout: 900 })
      assert.equal(standIn.calls.Encrypt, 3, 'two UNAVAILABLE answers were retried by gax')

      standIn.resetCounters()
      standIn.setFaults({ resourceExhaustedNext: 1 })
      await assertGrpcError(
        client.encrypt({ name: key, plaintext: Buffer.from('x') }, { timeout: 900 }),
        status.RESOURCE_EXHAUSTED,
        /^Quota exceeded for quota metric 'Cryptographic requests'/,
      )
      assert.equal(standIn.calls.Encrypt, 1, 'RESOURCE_EXHAUSTED is not retried')
    })

    it('unavailableRate fails the chosen fraction of calls', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      standIn.setFaults({ unavailableRate: 1 })
      await assertGrpcError(client.getCryptoKey({ name: key }, once()), status.UNAVAILABLE)

      const rolls = [0.1, 0.9, 0.4, 0.6]
      const seeded = new KmsStandIn({ random: () => rolls.shift() ?? 1 })
      seeded.createKey(key)
      seeded.setFaults({ unavailableRate: 0.5 })
      const running = await seeded.start()
      const seededClient = newClient(running.port)
      try {
        const outcomes: string[] = []
        for (let i = 0; i < 4; i++) {
          outcomes.push(
            await seededClient.getCryptoKey({ name: key }, once()).then(
              () => 'ok',
              (e: GrpcLikeError) => String(e.code),
            ),
          )
        }
        assert.deepEqual(outcomes, [String(status.UNAVAILABLE), 'ok', String(status.UNAVAILABLE), 'ok'])
      } finally {
        await seededClient.close()
        await running.close()
      }
    })

    it('latencyMs per method delays only that method and trips short deadlines', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      standIn.setFaults({ latencyMs: { GetCryptoKey: 150 } })

      let started = Date.now()
      await client.getCryptoKey({ name: key }, once())
      assert.ok(Date.now() - started >= 140, 'GetCryptoKey was delayed')

      started = Date.now()
      await client.encrypt({ name: key, plaintext: Buffer.from('x') }, once())
      assert.ok(Date.now() - started < 100, 'Encrypt was not delayed')

      await assertGrpcError(client.getCryptoKey({ name: key }, once(50)), status.DEADLINE_EXCEEDED)
      await waitFor(() => standIn.parkedCalls === 0)
    })

    it('hang never answers; the call ends at the client deadline and the server lets go', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      standIn.setFaults({ hang: true, methods: ['Encrypt'] })
      const started = Date.now()
      const pending = client.encrypt({ name: key, plaintext: Buffer.from('x') }, once(150))
      await waitFor(() => standIn.parkedCalls === 1)
      await assertGrpcError(pending, status.DEADLINE_EXCEEDED)
      assert.ok(Date.now() - started >= 140)
      await waitFor(() => standIn.parkedCalls === 0)
      await client.getCryptoKey({ name: key }, once()) // other methods unaffected
    })

    it('corruptResponseCrc32c: wrong ciphertext_crc32c on Encrypt, wrong plaintext_crc32c on Decrypt', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      standIn.setFaults({ corruptResponseCrc32c: true })
      const [encrypted] = await client.encrypt({ name: key, plaintext: Buffer.from('x') }, once())
      assert.notEqual(crcValue(encrypted.ciphertextCrc32c), crc32c(encrypted.ciphertext as Uint8Array))

      const [decrypted] = await client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once())
      assert.equal(Buffer.from(decrypted.plaintext as Uint8Array).toString(), 'x')
      assert.notEqual(crcValue(decrypted.plaintextCrc32c), crc32c(decrypted.plaintext as Uint8Array))
    })

    it('corruptCiphertext flips a ciphertext byte but keeps the original CRC', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      standIn.setFaults({ corruptCiphertext: true })
      const [encrypted] = await client.encrypt({ name: key, plaintext: Buffer.from('x') }, once())
      assert.notEqual(crcValue(encrypted.ciphertextCrc32c), crc32c(encrypted.ciphertext as Uint8Array))
      standIn.clearFaults()
      await assertGrpcError(
        client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once()),
        status.INVALID_ARGUMENT,
        'Decryption failed: the ciphertext is invalid.',
      )
    })

    it('corruptPlaintext flips a plaintext byte but keeps the CRC of the original', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      const original = Buffer.from('the real plaintext')
      const [encrypted] = await client.encrypt({ name: key, plaintext: original }, once())
      standIn.setFaults({ corruptPlaintext: true })
      const [decrypted] = await client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once())
      const received = Buffer.from(decrypted.plaintext as Uint8Array)
      assert.notDeepEqual(received, original)
      assert.equal(crcValue(decrypted.plaintextCrc32c), crc32c(original))
      assert.notEqual(crcValue(decrypted.plaintextCrc32c), crc32c(received))
    })

    it('unverifiedChecksums reports verified_* false and ignores request checksums', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      standIn.setFaults({ unverifiedChecksums: true })
      const plaintext = Buffer.from('x')
      const [good] = await client.encrypt({ name: key, plaintext, plaintextCrc32c: { value: crc32c(plaintext) } }, once())
      assert.equal(good.verifiedPlaintextCrc32c, false)
      const [bad] = await client.encrypt({ name: key, plaintext, plaintextCrc32c: { value: 1 } }, once())
      assert.equal(bad.verifiedPlaintextCrc32c, false)
    })

    it('several fault sets compose, and the live faults object can be edited', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      standIn.setFaults([{ latencyMs: 30 }, { resourceExhaustedNext: 1, methods: ['GetCryptoKey'] }])
      await assertGrpcError(client.getCryptoKey({ name: key }, once()), status.RESOURCE_EXHAUSTED)
      await client.getCryptoKey({ name: key }, once())
      standIn.faults.latencyMs = 0
      standIn.faults.unavailableNext = 1
      await assertGrpcError(client.encrypt({ name: key, plaintext: Buffer.from('x') }, once()), status.UNAVAILABLE)
      assert.deepEqual(
        standIn.requests.map((r) => r.faults),
        [['latency', 'resourceExhausted'], ['latency'], ['unavailable']],
      )
    })
  })

  describe('observation', () => {
    it('counts calls per RPC and records method, name and time but never payloads', async () => {
      const key = uniqueKeyName()
      standIn.createKey(key)
      const t0 = Date.now()
      const [encrypted] = await client.encrypt({ name: key, plaintext: Buffer.from('top secret') }, once())
      await client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once())
      await client.decrypt({ name: key, ciphertext: encrypted.ciphertext }, once())
      await client.listCryptoKeyVersions({ parent: key }, once())

      assert.deepEqual(
        { ...standIn.calls },
        { Encrypt: 1, Decrypt: 2, GetCryptoKey: 0, ListCryptoKeyVersions: 1, GetCryptoKeyVersion: 0, AsymmetricSign: 0, GetPublicKey: 0 },
      )
      assert.deepEqual(
        standIn.requests.map((r) => [r.method, r.name]),
        [
          ['Encrypt', key],
          ['Decrypt', key],
          ['Decrypt', key],
          ['ListCryptoKeyVersions', key],
        ],
      )
      for (const request of standIn.requests) {
        assert.ok(request.time.getTime() >= t0 - 5 && request.time.getTime() <= Date.now())
      }
      assert.ok(!JSON.stringify(standIn.requests).includes('top secret'))

      standIn.resetCounters()
      assert.equal(standIn.calls.Decrypt, 0)
      assert.deepEqual(standIn.requests, [])
    })
  })
})

describe('KmsStandIn lifecycle and programmatic API', () => {
  it('binds a requested port and refuses to start twice', async () => {
    const first = new KmsStandIn()
    const running = await first.start()
    await running.close()
    const standIn = new KmsStandIn()
    const again = await standIn.start({ port: running.port, host: '127.0.0.1' })
    try {
      assert.equal(again.port, running.port)
      await assert.rejects(standIn.start(), /already running/)
    } finally {
      await again.close()
    }
  })

  it('close() is prompt even with a call parked in a hang', async () => {
    const standIn = new KmsStandIn()
    const key = uniqueKeyName()
    standIn.createKey(key)
    standIn.setFaults({ hang: true })
    const running = await standIn.start()
    const client = newClient(running.port)
    try {
      const pending = client.getCryptoKey({ name: key }, once(5000))
      await waitFor(() => standIn.parkedCalls === 1)
      const started = Date.now()
      await running.close()
      await assert.rejects(pending)
      assert.ok(Date.now() - started < 500, 'close() and the client error were prompt')
      assert.equal(standIn.parkedCalls, 0)
    } finally {
      await client.close()
    }
  })

  it('rejects impossible key states', () => {
    const standIn = new KmsStandIn()
    const key = uniqueKeyName()
    assert.deepEqual(standIn.createKey(key, { versions: 2 }), {
      name: key,
      primary: 2,
      primaryName: `${key}/cryptoKeyVersions/2`,
      versions: [
        { version: 1, name: `${key}/cryptoKeyVersions/1`, state: 'ENABLED' },
        { version: 2, name: `${key}/cryptoKeyVersions/2`, state: 'ENABLED' },
      ],
    })
    assert.throws(() => standIn.createKey(key), /already exists/)
    assert.throws(() => standIn.createKey('keyRings/r/cryptoKeys/k'), /Not a CryptoKey name/)
    assert.throws(() => standIn.rotate(uniqueKeyName()), /Unknown CryptoKey/)
    standIn.setState(key, 1, 'DISABLED')
    assert.throws(() => standIn.setPrimary(key, 1), /only an ENABLED version can be primary/)
    assert.throws(() => standIn.setPrimary(key, 7), /Unknown CryptoKeyVersion/)
    standIn.setState(key, 1, 'DESTROYED')
    assert.throws(() => standIn.setState(key, 1, 'ENABLED'), /DESTROYED/)
  })
})

async function waitFor(condition: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
