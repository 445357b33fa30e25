/**
 * `keywrap kms-plugin --upstream URL`: the plugin forwards to a running keywrap service (npm start), on
 * the local keyring and on the Cloud KMS stand-in, with a token file or a Google ID token from a
 * metadata server stand-in; audit and policy are the service's.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { status as GrpcStatus } from '@grpc/grpc-js'
import { KmsStandIn, type RunningKmsStandIn } from '../support/kms-stand-in.js'
import { runCli, startServer, type RunningServer } from '../support/processes.js'
import { assertSigtermDrains, eventually, kmsClient, pluginHome, startPlugin, type KmsClient, type RunningPlugin } from '../support/kms-plugin.js'

const SEED = Buffer.alloc(32, 0x71)
const KEY = 'projects/test/locations/global/keyRings/kubernetes/cryptoKeys/upstream'

async function mintToken(env: Record<string, string>, subject: string): Promise<string> {
  const minted = await runCli(['token', '--sub', subject], env)
  assert.equal(minted.code, 0, minted.stderr)
  return minted.stdout.trim()
}

/** A plugin forwarding to `server` with a token of kube-apiserver@node-1 in DIR/NAME.token, listening on DIR/NAME.sock. */
async function startUpstreamPlugin(server: RunningServer, serverEnv: Record<string, string>, dir: string, name: string, grace: number): Promise<RunningPlugin> {
  const tokenFile = join(dir, `${name}.token`)
  await writeFile(tokenFile, await mintToken(serverEnv, 'kube-apiserver@node-1'))
  const args = ['--alias', 'kubernetes', '--upstream', server.baseUrl, '--token-file', tokenFile, '--refresh', '1', '--grace', String(grace)]
  return startPlugin(join(dir, `${name}.sock`), args, { KEYWRAP_HOME: dir })
}

function auditEntries(server: RunningServer): any[] {
  return server
    .stdout()
    .split('\n')
    .filter((line) => line.includes('"audit":"true"'))
    .map((line) => JSON.parse(line))
}

describe('keywrap kms-plugin --upstream, the service on the local keyring', () => {
  let env: Record<string, string>
  let server: RunningServer
  let pluginDir: string
  let tokenFile: string
  let plugin: RunningPlugin
  let client: KmsClient

  before(async () => {
    ;({ env } = await pluginHome({ kubernetes: 'local://kubernetes' }, { KEYWRAP_KEY_REFRESH_SECONDS: '1' }))
    server = await startServer(env)
    pluginDir = await mkdtemp(join(tmpdir(), 'keywrap-kms-upstream-'))
    tokenFile = join(pluginDir, 'kms.token')
    plugin = await startUpstreamPlugin(server, env, pluginDir, 'kms', 3)
    client = kmsClient(plugin.socket)
  })
  after(async () => {
    client?.close()
    await plugin?.stop()
    await server?.stop()
  })

  test("Status, Encrypt and Decrypt go through the service, which audits them under the uid and the token's principal", async () => {
    const status = await client.status()
    assert.deepEqual([status.version, status.healthz], ['v2', 'ok'])
    const encrypted = await client.encrypt(SEED, 'upstream-uid-1')
    assert.equal(encrypted.key_id, status.key_id)
    const [again] = await Promise.all([client.encrypt(SEED)])
    assert.notDeepEqual(again!.ciphertext, encrypted.ciphertext)
    assert.deepEqual(await client.decrypt({ ...encrypted, uid: 'upstream-uid-2' }), SEED)
    const entries = auditEntries(server)
    const wrap = entries.find((entry) => entry.clientRequestId === 'upstream-uid-1')
    const unwrap = entries.find((entry) => entry.clientRequestId === 'upstream-uid-2')
    assert.deepEqual([wrap?.operation, wrap?.outcome, wrap?.principal], ['wrap', 'allowed', 'kube-apiserver@node-1'])
    assert.deepEqual([unwrap?.operation, unwrap?.outcome], ['unwrap', 'allowed'])
    await assert.rejects(client.decrypt({ ciphertext: encrypted.ciphertext, key_id: 'keywrap-v1-never' }), (error: any) => {
      assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT)
      assert.match(error.details, /was never issued/)
      return true
    })
  })

  test('a rotation on the service changes the key_id; old ciphertexts still decrypt', async () => {
    const before = await client.status()
    const old = await client.encrypt(SEED)
    assert.equal((await runCli(['keys', 'rotate', 'kubernetes'], env)).code, 0)
    assert.ok(await eventually(async () => (await client.status()).key_id !== before.key_id, 8000))
    const fresh = await client.encrypt(SEED)
    assert.equal(fresh.key_id, (await client.status()).key_id)
    assert.deepEqual(await client.decrypt(old), SEED)
    assert.deepEqual(await client.decrypt(fresh), SEED)
  })

  test('the token file is re-read when it changes; a token the service refuses or without grants is refused', async () => {
    const valid = await mintToken(env, 'kube-apiserver@node-1')
    const refusedWith = (code: GrpcStatus) => () =>
      client.encrypt(SEED).then(
        () => false,
        (error: any) => error.code === code,
      )
    await writeFile(tokenFile, 'not-a-token')
    assert.ok(await eventually(refusedWith(GrpcStatus.UNAUTHENTICATED), 5000), 'a token the service refuses')
    await writeFile(tokenFile, await mintToken(env, 'someone-else'))
    assert.ok(await eventually(refusedWith(GrpcStatus.PERMISSION_DENIED), 5000), 'a principal without grants')
    await writeFile(tokenFile, valid)
    assert.ok(await eventually(async () => (await client.encrypt(SEED)).ciphertext.length > 0, 5000))
  })

  test("a Google ID token from the metadata server, for the service's URL as audience", async () => {
    const requests: { url: string; headers: IncomingHttpHeaders }[] = []
    const token = await mintToken(env, 'kube-apiserver@node-2')
    const metadata = createServer((request, response) => {
      requests.push({ url: request.url!, headers: request.headers })
      if (request.headers['metadata-flavor'] !== 'Google') return void response.writeHead(403).end()
      response.writeHead(200, { 'content-type': 'text/plain', 'metadata-flavor': 'Google' }).end(token)
    })
    await new Promise<void>((resolve) => metadata.listen(0, '127.0.0.1', resolve))
    const address = metadata.address() as { port: number }
    const socket = join(pluginDir, 'id-token.sock')
    const withIdToken = await startPlugin(socket, ['--alias', 'kubernetes', '--upstream', server.baseUrl], {
      KEYWRAP_HOME: pluginDir,
      GCE_METADATA_HOST: `127.0.0.1:${address.port}`,
    })
    const idClient = kmsClient(socket)
    try {
      const encrypted = await idClient.encrypt(SEED, 'id-token-uid')
      assert.deepEqual(await idClient.decrypt(encrypted), SEED)
      const url = new URL(requests[0]!.url, 'http://metadata')
      assert.equal(url.pathname, '/computeMetadata/v1/instance/service-accounts/default/identity')
      assert.equal(url.searchParams.get('audience'), server.baseUrl)
      assert.equal(requests.length, 1, 'the token is fetched once and reused until it nears expiry')
      assert.equal(auditEntries(server).find((entry) => entry.clientRequestId === 'id-token-uid')?.principal, 'kube-apiserver@node-2')
    } finally {
      idClient.close()
      await withIdToken.stop()
      metadata.close()
    }
  })

  test('when the service cannot be reached, healthz says so beyond the grace and calls are UNAVAILABLE', async () => {
    const { env: otherEnv } = await pluginHome({ kubernetes: 'local://kubernetes' }, { KEYWRAP_KEY_REFRESH_SECONDS: '1' })
    const doomed = await startServer(otherEnv)
    const orphan = await startUpstreamPlugin(doomed, otherEnv, pluginDir, 'unreachable', 2)
    const orphanClient = kmsClient(orphan.socket)
    try {
      assert.equal((await orphanClient.status()).healthz, 'ok')
      await doomed.stop()
      // Beyond the grace healthz leaves ok; once the plugin's own read of the service has failed, it says why.
      assert.ok(await eventually(async () => /cannot be reached/.test((await orphanClient.status()).healthz), 10_000), (await orphanClient.status()).healthz)
      assert.notEqual((await orphanClient.status()).healthz, 'ok')
      await assert.rejects(orphanClient.encrypt(SEED), (error: any) => error.code === GrpcStatus.UNAVAILABLE)
    } finally {
      orphanClient.close()
      await orphan.stop()
    }
  })
})

describe('keywrap kms-plugin --upstream, the service on Cloud KMS (the stand-in)', () => {
  const kms = new KmsStandIn()
  let running: RunningKmsStandIn
  let server: RunningServer
  let pluginDir: string
  let plugin: RunningPlugin
  let client: KmsClient
  let serverEnv: Record<string, string>

  before(async () => {
    kms.createKey(KEY)
    running = await kms.start()
    const { env } = await pluginHome(
      { kubernetes: `gcp-kms://${KEY}` },
      {
        KMS_EMULATOR_HOST: running.address,
        GOOGLE_CLOUD_PROJECT: 'test',
        KEYWRAP_KEY_REFRESH_SECONDS: '1',
        KEYWRAP_KMS_BUDGET_MS: '2000',
        KEYWRAP_KMS_TIMEOUT_MS: '1000',
      },
    )
    server = await startServer(env)
    serverEnv = env
    pluginDir = await mkdtemp(join(tmpdir(), 'keywrap-kms-upstream-gcp-'))
    plugin = await startUpstreamPlugin(server, env, pluginDir, 'kms', 4)
    client = kmsClient(plugin.socket)
  })
  after(async () => {
    client?.close()
    await plugin?.stop()
    await server?.stop()
    await running?.close()
  })

  test('round trip, and a Cloud KMS rotation changes the key_id while old ciphertexts decrypt', async () => {
    const before = await client.status()
    const old = await client.encrypt(SEED)
    assert.equal(old.key_id, before.key_id)
    assert.deepEqual(await client.decrypt(old), SEED)
    kms.rotate(KEY)
    assert.ok(await eventually(async () => (await client.status()).key_id !== before.key_id, 8000))
    const fresh = await client.encrypt(SEED)
    assert.notEqual(fresh.key_id, old.key_id)
    assert.deepEqual(await client.decrypt(old), SEED)
    assert.deepEqual(await client.decrypt(fresh), SEED)
  })

  test('an outage of Cloud KMS behind the service turns healthz away from ok and back', async () => {
    assert.equal((await client.status()).healthz, 'ok')
    kms.setFaults({ methods: ['GetCryptoKey', 'ListCryptoKeyVersions'], unavailableRate: 1 })
    try {
      assert.ok(await eventually(async () => (await client.status()).healthz !== 'ok', 15_000), 'healthz leaves ok')
      assert.match((await client.status()).healthz, /has not been read from its provider .*last read it from its provider at/)
    } finally {
      kms.clearFaults()
    }
    assert.ok(await eventually(async () => (await client.status()).healthz === 'ok', 15_000), 'healthz comes back')
  })

  test('SIGTERM while Encrypts wait on the service: they finish, the socket is removed, exit 0', async () => {
    const draining = await startUpstreamPlugin(server, serverEnv, pluginDir, 'draining', 4)
    await assertSigtermDrains(kms, draining)
  })
})
