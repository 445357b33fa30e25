/**
 * `keywrap kms-plugin` on the local keyring, driven as the API server drives it: Status polls,
 * Encrypt/Decrypt, a rotation with `keywrap keys rotate`, refusals, the socket's life and SIGTERM.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { status as GrpcStatus } from '@grpc/grpc-js'
import { KMS_PLUGIN_ISSUER } from '../../src/config/config.js'
import { runCli } from '../support/processes.js'
import { eventually, kmsClient, pluginHome, startPlugin, type KmsClient, type RunningPlugin } from '../support/kms-plugin.js'

const SEED = Buffer.alloc(32, 0x5a)

describe('keywrap kms-plugin on the local keyring', () => {
  let home: string
  let env: Record<string, string>
  let plugin: RunningPlugin
  let client: KmsClient

  before(async () => {
    ;({ home, env } = await pluginHome({ kubernetes: 'local://kubernetes', other: 'local://other' }, { KEYWRAP_KEY_REFRESH_SECONDS: '1' }))
    plugin = await startPlugin(join(home, 'sockets', 'kms.sock'), ['--alias', 'kubernetes', '--principal', 'kube-apiserver@node-1'], env)
    client = kmsClient(plugin.socket)
  })
  after(async () => {
    client?.close()
    await plugin?.stop()
  })

  test("the socket is the running user's, mode 0600", async () => {
    const socket = await stat(plugin.socket)
    assert.ok(socket.isSocket())
    assert.equal(socket.mode & 0o777, 0o600)
    assert.equal(socket.uid, process.getuid!())
  })

  test('Status answers v2, ok and the key_id Encrypt uses; Decrypt gives the seed back, audited under the uid', async () => {
    const status = await client.status()
    assert.equal(status.version, 'v2')
    assert.equal(status.healthz, 'ok')
    assert.match(status.key_id, /^keywrap-v1-[A-Za-z0-9_-]{43}$/)
    assert.doesNotMatch(status.key_id, /local|kubernetes|versions/, 'the key_id does not show the key name')

    const encrypted = await client.encrypt(SEED, 'uid-encrypt-1')
    assert.equal(encrypted.key_id, status.key_id)
    assert.ok(!encrypted.ciphertext.includes(SEED), 'the ciphertext does not hold the seed')
    for (const [key, value] of Object.entries(encrypted.annotations)) {
      assert.match(key, /^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$/, 'annotation keys are domain names')
      assert.ok(key.length + value.length < 32 * 1024)
    }
    const plaintext = await client.decrypt({
      ciphertext: encrypted.ciphertext,
      key_id: encrypted.key_id,
      annotations: encrypted.annotations,
      uid: 'uid-decrypt-1',
    })
    assert.deepEqual(plaintext, SEED)

    // The entries are written before the answers, but reach this process through a pipe: wait for them.
    const auditEntries = () =>
      plugin
        .stdout()
        .split('\n')
        .filter((line) => line.includes('"audit"'))
        .map((line) => JSON.parse(line))
    const deadline = Date.now() + 5000
    while (!auditEntries().some((entry) => entry.clientRequestId === 'uid-decrypt-1') && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50))
    const audit = auditEntries()
    const wrap = audit.find((entry) => entry.clientRequestId === 'uid-encrypt-1')
    const unwrap = audit.find((entry) => entry.clientRequestId === 'uid-decrypt-1')
    assert.deepEqual([wrap?.operation, wrap?.outcome, wrap?.principal, wrap?.issuer], ['wrap', 'allowed', 'kube-apiserver@node-1', KMS_PLUGIN_ISSUER])
    assert.deepEqual([unwrap?.operation, unwrap?.outcome, unwrap?.cacheLevel], ['unwrap', 'allowed', 'l1'])
    assert.ok(!plugin.stdout().includes(SEED.toString('base64')), 'no seed in the audit trail')
  })

  test('two Encrypts of one plaintext give different ciphertexts', async () => {
    const [first, second] = await Promise.all([client.encrypt(SEED), client.encrypt(SEED)])
    assert.notDeepEqual(first.ciphertext, second.ciphertext)
    assert.deepEqual(await client.decrypt(first), SEED)
    assert.deepEqual(await client.decrypt(second), SEED)
  })

  test('a key_id never issued, a key_id of another version and a ciphertext keywrap did not make are refused, and audited', async () => {
    const encrypted = await client.encrypt(SEED)
    await assert.rejects(client.decrypt({ ciphertext: encrypted.ciphertext, key_id: 'keywrap-v1-never-issued', uid: 'uid-unknown' }), (error: any) => {
      assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT)
      assert.match(error.details, /key_id "keywrap-v1-never-issued" was never issued/)
      return true
    })
    await assert.rejects(client.decrypt({ ciphertext: Buffer.from('not a wrapped key'), key_id: encrypted.key_id }), (error: any) => {
      assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT)
      assert.match(error.details, /not one keywrap made/)
      return true
    })
    await assert.rejects(client.encrypt(Buffer.alloc(0)), (error: any) => error.code === GrpcStatus.INVALID_ARGUMENT)
    const refused = plugin
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"clientRequestId":"uid-unknown"'))
      .map((line) => JSON.parse(line))
    assert.deepEqual(
      refused.map((entry) => [entry.operation, entry.outcome, entry.errorCode]),
      [['unwrap', 'denied', 'cannot_unwrap']],
    )
  })

  test('keys rotate: Status gives a new key_id within a refresh, new Encrypts use it, old ciphertexts still decrypt under the old one', async () => {
    const before = await client.status()
    const old = await client.encrypt(SEED)
    const rotated = await runCli(['keys', 'rotate', 'kubernetes'], env)
    assert.equal(rotated.code, 0, rotated.stderr)
    assert.ok(await eventually(async () => (await client.status()).key_id !== before.key_id, 5000), 'the key_id changes within a refresh')
    const after = await client.status()
    assert.equal(after.healthz, 'ok')
    const fresh = await client.encrypt(SEED)
    assert.equal(fresh.key_id, after.key_id)
    assert.deepEqual(await client.decrypt(old), SEED, 'the old key_id still decrypts while its version is enabled')
    assert.deepEqual(await client.decrypt(fresh), SEED)
    await assert.rejects(client.decrypt({ ciphertext: old.ciphertext, key_id: fresh.key_id }), (error: any) => {
      assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT)
      assert.match(error.details, /another key version/)
      return true
    })
    const disabled = await runCli(['keys', 'disable', 'kubernetes', '1'], env)
    assert.equal(disabled.code, 0, disabled.stderr)
    const refusedAfterDisable = await eventually(
      () =>
        client.decrypt(old).then(
          () => false,
          (error: any) => error.code === GrpcStatus.FAILED_PRECONDITION,
        ),
      5000,
    )
    assert.ok(refusedAfterDisable, 'a disabled version no longer decrypts')
    assert.equal((await runCli(['keys', 'enable', 'kubernetes', '1'], env)).code, 0)
  })

  test('a principal without grants on the alias is refused, like any caller', async () => {
    const socket = join(home, 'denied.sock')
    const denied = await startPlugin(socket, ['--alias', 'other'], env)
    const other = kmsClient(socket)
    try {
      await assert.rejects(other.encrypt(SEED), (error: any) => error.code === GrpcStatus.PERMISSION_DENIED)
    } finally {
      other.close()
      await denied.stop()
    }
  })

  test('a live socket is never taken over; a stale socket file is replaced', async () => {
    const taken = await startPlugin(plugin.socket, ['--alias', 'kubernetes'], env).then(
      (second) => second.stop().then(() => 'started'),
      (error: Error) => error.message,
    )
    assert.match(taken, /another process listens on/)

    const stale = join(home, 'stale.sock')
    // A plugin that was killed leaves its socket file behind.
    const killed = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`])
    await once(killed.stdout, 'data')
    killed.kill('SIGKILL')
    await once(killed, 'exit')
    assert.ok((await stat(stale)).isSocket())
    const replacing = await startPlugin(stale, ['--alias', 'kubernetes'], env)
    const replaced = kmsClient(stale)
    try {
      assert.equal((await replaced.status()).healthz, 'ok')
    } finally {
      replaced.close()
      await replacing.stop()
    }
  })

  test('wrong arguments exit 64 with the usage', async () => {
    const missing = await runCli(['kms-plugin', '--alias', 'kubernetes'], env)
    assert.equal(missing.code, 64)
    assert.match(missing.stderr, /--listen PATH is required/)
    const unknown = await runCli(['kms-plugin', '--listen', join(home, 'x.sock'), '--alias', 'nope'], env)
    assert.equal(unknown.code, 64)
    assert.match(unknown.stderr, /no key has the alias "nope"/)
  })
})

test('SIGTERM: the plugin removes its socket, seals its audit chain with a shutdown checkpoint and exits 0', async () => {
  const { home, env } = await pluginHome({ kubernetes: 'local://kubernetes' })
  const plugin = await startPlugin(join(home, 'kms.sock'), ['--alias', 'kubernetes'], env)
  const client = kmsClient(plugin.socket)
  try {
    const encrypted = await client.encrypt(SEED)
    assert.deepEqual(await client.decrypt(encrypted), SEED)
    assert.equal(await plugin.stop('SIGTERM'), 0)
  } finally {
    client.close()
  }
  await assert.rejects(stat(plugin.socket), { code: 'ENOENT' })
  const trail = plugin
    .stdout()
    .split('\n')
    .filter((line) => line.includes('"audit":"true"'))
    .map((line) => JSON.parse(line))
  assert.deepEqual(
    trail.map((entry) => entry.checkpoint?.event ?? entry.operation),
    ['start', 'wrap', 'unwrap', 'shutdown'],
  )
})
