/**
 * Checkpoints signed by a Cloud KMS key version: the real @google-cloud/kms client against the
 * stand-in's AsymmetricSign and GetPublicKey (real P-256 keys), checked with node:crypto.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createPublicKey, verify } from 'node:crypto'
import { KmsCheckpointSigner } from '../../src/audit/kms-checkpoint-signer.js'
import { publicKeysFromPem } from '../../src/audit/checkpoint-verifier.js'
import { CheckpointedAuditSink } from '../../src/audit/checkpointer.js'
import { StdoutAuditSink } from '../../src/audit/stdout-sink.js'
import { verifyAuditTrail } from '../../src/cli/audit-verify.js'
import { createKmsClient } from '../../src/providers/gcp-kms/kms-client.js'
import { KmsStandIn, type RunningKmsStandIn } from '../support/kms-stand-in.js'
import { auditEntry, MemoryLineStream } from './audit-fixtures.js'

process.env.METADATA_SERVER_DETECTION = 'none'

const KEY = 'projects/test-project/locations/global/keyRings/audit/cryptoKeys/checkpoints'

describe('KmsCheckpointSigner through the Cloud KMS stand-in', () => {
  let kms: KmsStandIn
  let running: RunningKmsStandIn
  let version: string
  const signers: KmsCheckpointSigner[] = []
  const signer = () => {
    const created = new KmsCheckpointSigner(version, createKmsClient({ emulatorHost: running.address, projectId: 'test-project' }), 1000)
    signers.push(created)
    return created
  }

  before(async () => {
    kms = new KmsStandIn()
    version = kms.createSigningKey(KEY)
    running = await kms.start()
  })
  after(async () => {
    await Promise.all(signers.map((created) => created.close()))
    await running.close()
  })

  test('AsymmetricSign over the SHA-256 digest: node:crypto verifies the signature with the GetPublicKey key', async () => {
    kms.resetCounters()
    const data = Buffer.from('{"chain":"c","lastSeq":3}')
    const kmsSigner = signer()
    const signature = await kmsSigner.sign(data, 2000)
    const pem = await kmsSigner.publicKeyPem()
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n/)
    assert.equal(verify('sha256', data, createPublicKey(pem), signature), true)
    assert.equal(verify('sha256', Buffer.from('{"chain":"c","lastSeq":4}'), createPublicKey(pem), signature), false)
    assert.deepEqual([kms.calls.AsymmetricSign, kms.calls.GetPublicKey], [1, 1])
    assert.equal(kmsSigner.keyId, `${KEY}/cryptoKeyVersions/1`)
    assert.equal(kmsSigner.algorithm, 'EC_SIGN_P256_SHA256')
  })

  test('a checkpointed trail signed through Cloud KMS verifies with the key GetPublicKey serves', async () => {
    kms.resetCounters()
    const kmsSigner = signer()
    const stream = new MemoryLineStream()
    const sink = new CheckpointedAuditSink(new StdoutAuditSink({ projectId: 'test-project', logName: 'keywrap-audit', stream }), kmsSigner, {
      intervalSeconds: 60,
      log: { info: () => undefined, error: () => undefined },
      timer: false,
    })
    await sink.checkpointer.checkpoint()
    for (let index = 0; index < 3; index++) await sink.write(auditEntry({ requestId: `r-${index}` }))
    const publicKeys = publicKeysFromPem(await kmsSigner.publicKeyPem())
    await sink.close()
    const lines = stream.lines.join('').split('\n').filter(Boolean)
    const checkpoints = lines.map((line) => JSON.parse(line)).filter((line) => line.operation === 'audit.checkpoint')
    assert.deepEqual(
      checkpoints.map((line) => [line.checkpoint.event, line.checkpoint.algorithm, line.checkpoint.key]),
      [
        ['start', 'EC_SIGN_P256_SHA256', version],
        ['shutdown', 'EC_SIGN_P256_SHA256', version],
      ],
    )
    assert.equal(kms.calls.AsymmetricSign, 2, 'one AsymmetricSign per checkpoint: the record Cloud KMS keeps of them')
    assert.deepEqual(await verifyAuditTrail(lines, { publicKeys }), {
      ok: true,
      chains: 1,
      entries: 5,
      skipped: 0,
      checkpoints: 2,
      signaturesChecked: true,
      problems: [],
    })
  })

  test('Cloud KMS unreachable or slow: the signature is refused within the deadline, key accesses go on', async () => {
    const kmsSigner = signer()
    kms.setFaults({ methods: ['AsymmetricSign'], unavailableNext: 1 })
    await assert.rejects(kmsSigner.sign(Buffer.from('x'), 2000), /UNAVAILABLE/)
    kms.setFaults({ methods: ['AsymmetricSign'], hang: true })
    const errors: string[] = []
    const stream = new MemoryLineStream()
    const sink = new CheckpointedAuditSink(new StdoutAuditSink({ projectId: 'test-project', logName: 'keywrap-audit', stream }), kmsSigner, {
      intervalSeconds: 60,
      signTimeoutMs: 300,
      log: { info: () => undefined, error: (_details, message) => errors.push(message) },
      timer: false,
    })
    const started = performance.now()
    await sink.write(auditEntry())
    assert.ok(performance.now() - started < 250, 'the access did not wait for the signature')
    await sink.checkpointer.checkpoint()
    assert.deepEqual(errors, ['audit checkpoint not written; retrying at the next interval'])
    kms.clearFaults()
    await sink.close()
    assert.deepEqual(
      stream.lines
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line).checkpoint?.event ?? 'access'),
      ['access', 'shutdown'],
    )
  })

  test('a disabled key version signs nothing', async () => {
    const name = `${KEY}-disabled`
    const disabled = kms.createSigningKey(name)
    kms.setSigningKeyState(name, 1, 'DISABLED')
    const kmsSigner = new KmsCheckpointSigner(disabled, createKmsClient({ emulatorHost: running.address }), 1000)
    signers.push(kmsSigner)
    await assert.rejects(kmsSigner.sign(Buffer.from('x'), 1000), /FAILED_PRECONDITION|not enabled|DISABLED/)
  })
})
