/**
 * The end of a rotation campaign as an operator runs it against `npm start`: `keywrap audit versions`
 * over the file sink's trail (and over a Cloud Logging export on standard input), and `keywrap keys
 * retire` refusing while the service or the trail shows a recent use, then disabling a local version
 * and printing the gcloud command for a Cloud KMS one.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { kmsKeyEnvironment } from '../support/kms-key-environment.js'
import { KmsStandIn, type RunningKmsStandIn } from '../support/kms-stand-in.js'
import { post, REPO_ROOT, runCli, startServer, type RunningServer } from '../support/processes.js'

const KMS_KEY = 'projects/acme/locations/europe-west1/keyRings/keywrap/cryptoKeys/payments'

describe('audit versions and keys retire against npm start', () => {
  const kms = new KmsStandIn()
  let running: RunningKmsStandIn
  let server: RunningServer
  let home: string
  let env: Record<string, string>
  let trail: string
  let ops: string
  let app: string
  let v1Keys: { wrappedKey: string }[]
  let lastV1UseMs: number

  const retire = (args: string[], url = server.baseUrl) => runCli(['keys', 'retire', ...args, '--url', url, '--token', ops], env)

  before(async () => {
    ;({ running, home, env } = await kmsKeyEnvironment(kms, KMS_KEY, 'payments', {}, { default: 'local://default' }))
    trail = join(home, 'audit.jsonl')
    server = await startServer({ ...env, KEYWRAP_AUDIT_SINK: `file:${trail}` })
    ops = (await runCli(['token', '--sub', 'ops'], env)).stdout.trim()
    app = (await runCli(['token', '--sub', 'app'], env)).stdout.trim()
    v1Keys = []
    for (let n = 0; n < 2; n++)
      v1Keys.push({ wrappedKey: (await post(server, '/v1/keys/default:generateDataKey', app, { includePlaintext: false })).json.wrappedKey })
    await post(server, '/v1/keys/default:unwrap', app, v1Keys[0])
    await post(server, '/v1/keys/default:unwrap', app, v1Keys[1])
    await post(server, '/v1/keys/default:unwrap', ops, v1Keys[0])
    assert.equal((await runCli(['keys', 'rotate', 'default'], env)).code, 0)
    await sleep(1500)
    const rewrapped = await post(server, '/v1/keys/default:rewrap', ops, v1Keys[1])
    assert.equal(rewrapped.json.rewrapped, true, JSON.stringify(rewrapped.json))
    lastV1UseMs = Date.now()
    await post(server, '/v1/keys/default:unwrap', app, { wrappedKey: rewrapped.json.wrappedKey })
    await post(server, '/v1/keys/default:unwrap', app, { wrappedKey: 'kw1.1.AAAA' })
  })
  after(async () => {
    await server?.stop()
    await running?.close()
  })

  test('audit versions: unwraps and rewraps per alias and version, per principal, as a table and as JSON', async () => {
    const table = await runCli(['audit', 'versions', trail], env)
    assert.equal(table.code, 0, table.stderr)
    const rows = table.stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.split(/ {2,}/))
    assert.deepEqual(rows[0], ['ALIAS', 'VERSION', 'UNWRAPS', 'REWRAPS', 'FAILED', 'FIRST SEEN', 'LAST SEEN'])
    assert.deepEqual(
      rows.slice(1).map((row) => row.slice(0, 5)),
      [
        ['default', '1', '3', '1', '1'],
        ['default', '2', '1', '0', '0'],
      ],
    )

    const json = await runCli(['audit', 'versions', '--by', 'principal', '--json', trail], env)
    const byPrincipal = JSON.parse(json.stdout) as any[]
    assert.deepEqual(
      byPrincipal.map((row) => [row.version, row.principal, row.unwraps, row.rewraps, row.failed]),
      [
        [1, 'app', 2, 0, 1],
        [1, 'ops', 1, 1, 0],
        [2, 'app', 1, 0, 0],
      ],
    )
    assert.equal(byPrincipal[0].keyVersion, 'local://default/versions/1')
    assert.ok(byPrincipal.every((row) => row.firstSeen <= row.lastSeen))

    // The same trail as Cloud Logging exports it (gcloud logging read --format=json: one JSON array,
    // the record under jsonPayload), on standard input.
    const exported = (await readFile(trail, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => ({ jsonPayload: JSON.parse(line), severity: JSON.parse(line).severity }))
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/keywrap.js'), 'audit', 'versions', '--by', 'principal', '--json', '-'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, NODE_TEST_CONTEXT: '' },
    })
    let stdout = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stdin.end(JSON.stringify(exported))
    const [code] = await once(child, 'exit')
    assert.equal(code, 0)
    assert.deepEqual(JSON.parse(stdout), byPrincipal)
  })

  test('keys retire refuses the primary, a recently used version, and an evidence window the service does not cover', async () => {
    const primary = await retire(['default', '2'])
    assert.equal(primary.code, 1)
    assert.match(primary.stderr, /it is the primary version/)

    const used = await retire(['default', '1', '--since', '1h'])
    assert.equal(used.code, 1)
    assert.match(used.stderr, /not retiring default version 1: the service used it at .*\(2 generateDataKeyWithoutPlaintext, 3 unwrap, 1 rewrap since/)

    // An instance that has not used version 1 (another in the fleet did): its counts prove nothing
    // about the hour before its start; the fleet's audit trail does.
    const other = await startServer(env)
    try {
      const uncovered = await retire(['default', '1', '--since', '1h'], other.baseUrl)
      assert.equal(uncovered.code, 1)
      assert.match(uncovered.stderr, /the service counts uses only since .*give audit trails covering the window with --audit/)
      const inTrail = await retire(['default', '1', '--since', '1h', '--audit', trail], other.baseUrl)
      assert.equal(inTrail.code, 1)
      assert.match(
        inTrail.stderr,
        /the audit trail shows uses after .*: app \(2 unwraps, 0 rewraps, 1 failed; last [^)]+\); ops \(1 unwraps, 1 rewraps, 0 failed/,
      )
    } finally {
      await other.stop()
    }
    assert.match((await runCli(['keys', 'list'], env)).stdout, /local:\/\/default\tversion 1\tENABLED/)
  })

  test('keys retire without --url asks the service at KEYWRAP_URL', async () => {
    const primary = await runCli(['keys', 'retire', 'default', '2'], { ...env, KEYWRAP_URL: server.baseUrl, KEYWRAP_TOKEN: ops })
    assert.equal(primary.code, 1)
    assert.match(primary.stderr, /not retiring default version 2: it is the primary version/)
    const elsewhere = await runCli(['keys', 'retire', 'default', '2'], { ...env, KEYWRAP_URL: 'http://127.0.0.1:9', KEYWRAP_TOKEN: ops })
    assert.equal(elsewhere.code, 1)
    assert.match(elsewhere.stderr, /cannot read key "default" from http:\/\/127\.0\.0\.1:9: unreachable: /)
  })

  test('keys retire disables a local version once nothing used it within --since', async () => {
    await sleep(Math.max(0, lastV1UseMs + 3000 - Date.now()))
    const retired = await retire(['default', '1', '--since', '3s', '--audit', trail])
    assert.equal(retired.code, 0, retired.stderr)
    assert.match(retired.stdout, /local:\/\/default: version 1 is now DISABLED/)
    assert.match((await runCli(['keys', 'list'], env)).stdout, /local:\/\/default\tversion 1\tDISABLED/)
    const again = await retire(['default', '1', '--since', '3s'])
    await sleep(1500)
    const refused = await post(server, '/v1/keys/default:unwrap', app, v1Keys[0])
    assert.equal(refused.json.code, 'key_version_not_enabled')
    assert.match(again.stdout, /already DISABLED|version 1 is already/)
  })

  test('keys retire prints the gcloud command for a Cloud KMS version', async () => {
    kms.rotate(KMS_KEY)
    await sleep(1500)
    const printed = await retire(['payments', '1', '--since', '1s'])
    assert.equal(printed.code, 0, printed.stderr)
    assert.equal(printed.stdout.split('\n')[1], 'gcloud kms keys versions disable 1 --key payments --keyring keywrap --location europe-west1 --project acme')
  })
})
