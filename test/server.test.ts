/**
 * The service as a user meets it: `npm start`'s entry point on an empty KEYWRAP_HOME, tokens and key
 * rotation through the `keywrap` command, plain HTTP over a real socket, and a clean SIGTERM.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { openSync } from 'node:fs'
import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { post, runCli, runNode, startServer, type RunningServer } from './support/processes.js'
import { KmsStandIn } from './support/kms-stand-in.js'

async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, withinMs: number): Promise<T> {
  const deadline = Date.now() + withinMs
  for (;;) {
    const value = await probe()
    if (accept(value) || Date.now() > deadline) return value
    await sleep(100)
  }
}

describe('npm start on an empty KEYWRAP_HOME', () => {
  let home: string
  let server: RunningServer
  let token: string
  const secrets: string[] = []

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
    server = await startServer({ KEYWRAP_HOME: home, KEYWRAP_KEY_REFRESH_SECONDS: '1' })
    const minted = await runCli(['token', '--sub', 'alice'], { KEYWRAP_HOME: home })
    assert.equal(minted.code, 0, minted.stderr)
    token = minted.stdout.trim()
    secrets.push(token)
  })
  after(async () => {
    await server.stop()
  })

  test('prints how to mint a token and a curl that works', () => {
    assert.match(server.stderr(), /npx keywrap token --sub alice/)
    assert.match(server.stderr(), /curl -s -X POST localhost:\d+\/v1\/keys\/default:generateDataKey -H "authorization: Bearer \$T"/)
  })

  test('the V8 it runs on knows the garbage-collector flag it sets', () => {
    assert.doesNotMatch(server.stderr(), /unrecognized flag/)
  })

  test('creates its keyring, development issuer, fingerprint key and checkpoint signing key in KEYWRAP_HOME', async () => {
    assert.deepEqual((await readdir(home)).sort(), ['audit-fingerprint.key', 'audit-signing.pem', 'dev-issuer.json', 'keyring.json'])
    assert.equal((await stat(join(home, 'audit-signing.pem'))).mode & 0o777, 0o600)
  })

  test('generate → unwrap → rotate → rewrap → disable, as in the README', async () => {
    const generated = await post(server, '/v1/keys/default:generateDataKey', token, { context: { app: 'e2e' } })
    assert.equal(generated.status, 200)
    secrets.push(generated.json.plaintext, generated.json.wrappedKey)
    const unwrapped = await post(server, '/v1/keys/default:unwrap', token, { wrappedKey: generated.json.wrappedKey, context: { app: 'e2e' } })
    assert.deepEqual(unwrapped.json, { plaintext: generated.json.plaintext, keyVersion: 'local://default/versions/1', primary: true })

    const rotated = await runCli(['keys', 'rotate', 'default'], { KEYWRAP_HOME: home })
    assert.equal(rotated.code, 0, rotated.stderr)
    assert.match(rotated.stdout, /version 2 is now primary/)
    const rewrapped = await eventually(
      () => post(server, '/v1/keys/default:rewrap', token, { wrappedKey: generated.json.wrappedKey, context: { app: 'e2e' } }),
      (response) => response.json.rewrapped === true,
      5000,
    )
    assert.equal(rewrapped.json.keyVersion, 'local://default/versions/2')
    secrets.push(rewrapped.json.wrappedKey)

    const disabled = await runCli(['keys', 'disable', 'default', '1'], { KEYWRAP_HOME: home })
    assert.equal(disabled.code, 0, disabled.stderr)
    const refused = await eventually(
      () => post(server, '/v1/keys/default:unwrap', token, { wrappedKey: generated.json.wrappedKey, context: { app: 'e2e' } }),
      (response) => response.status === 409,
      5000,
    )
    assert.equal(refused.json.code, 'key_version_not_enabled')
    const viaNewVersion = await post(server, '/v1/keys/default:unwrap', token, { wrappedKey: rewrapped.json.wrappedKey, context: { app: 'e2e' } })
    assert.equal(viaNewVersion.json.plaintext, generated.json.plaintext)
  })

  test('a second server on the same KEYWRAP_HOME serves the same keys and tokens', async () => {
    const twin = await startServer({ KEYWRAP_HOME: home })
    try {
      const generated = await post(server, '/v1/keys/default:generateDataKey', token, {})
      secrets.push(generated.json.plaintext, generated.json.wrappedKey)
      const unwrapped = await post(twin, '/v1/keys/default:unwrap', token, { wrappedKey: generated.json.wrappedKey })
      assert.equal(unwrapped.json.plaintext, generated.json.plaintext)
    } finally {
      assert.equal((await twin.stop()).code, 0)
    }
  })

  test('stdout carries one structured audit line per key access, and no secret anywhere', async () => {
    await sleep(100)
    const lines = server
      .stdout()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, any>)
    const trail = lines.filter((line) => line['logging.googleapis.com/labels']?.audit === 'true')
    // The chain's signed checkpoints share the trail; the start checkpoint comes first.
    assert.deepEqual([trail[0]?.operation, trail[0]?.checkpoint?.event], ['audit.checkpoint', 'start'])
    const audit = trail.filter((line) => line.operation !== 'audit.checkpoint')
    assert.ok(audit.length >= 5)
    for (const entry of audit) {
      assert.match(entry.severity, /^(NOTICE|WARNING|ERROR)$/)
      assert.equal(entry.logName, 'projects/keywrap-local/logs/keywrap-audit')
      assert.equal(entry.principal, 'alice')
    }
    const output = server.stdout() + server.stderr()
    for (const secret of secrets) assert.ok(!output.includes(secret), 'a key, wrapped key or token reached the logs')
    assert.doesNotMatch(output, /MetadataLookupWarning/)
  })

  test('SIGTERM closes the server cleanly and quickly, its audit chain ending with the shutdown checkpoint', async () => {
    const { code, elapsedMs } = await server.stop('SIGTERM')
    assert.equal(code, 0)
    assert.ok(elapsedMs < 5000, `took ${elapsedMs} ms`)
    const trail = server
      .stdout()
      .trim()
      .split('\n')
      .filter((line) => line.includes('"audit":"true"'))
    assert.equal(JSON.parse(trail.at(-1)!).checkpoint?.event, 'shutdown')
  })
})

describe('start-up refusals', () => {
  test('invalid settings: every violation named, exit 78, nothing listening', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
    const result = await runNode(['--import', 'tsx', 'src/server.ts'], { KEYWRAP_HOME: home, PORT: 'http', KEYWRAP_CACHE_TTL_SECONDS: '-1' })
    assert.equal(result.code, 78)
    assert.match(result.stderr, /PORT="http" must be a whole number/)
    assert.match(result.stderr, /KEYWRAP_CACHE_TTL_SECONDS="-1" must be a whole number/)
    assert.doesNotMatch(result.stderr, /at .*\(.*:\d+:\d+\)/)
  })

  test('a cache larger than the heap can hold: refused at start, naming both settings', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
    const result = await runNode(['--import', 'tsx', 'src/server.ts'], {
      KEYWRAP_HOME: home,
      KEYWRAP_CACHE_MAX_ENTRIES: '1000000',
      // Both flags: the default young generation differs between Node versions (16 MiB semi-spaces on 20, 64 on 24).
      NODE_OPTIONS: '--max-old-space-size=96 --max-semi-space-size=16',
    })
    assert.equal(result.code, 78)
    assert.match(result.stderr, /KEYWRAP_CACHE_MAX_ENTRIES=1000000 needs a V8 heap of at least 553 MiB, and this process's heap limit is 144 MiB/)
    assert.match(result.stderr, /--max-old-space-size in NODE_OPTIONS/)
  })

  test('NODE_ENV=production on the embedded defaults refuses to start and says what to change', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
    const result = await runNode(['--import', 'tsx', 'src/server.ts'], { KEYWRAP_HOME: home, NODE_ENV: 'production' })
    assert.equal(result.code, 78)
    for (const setting of ['keys', 'auth.issuers', 'policy.grants', 'KEYWRAP_AUDIT_FINGERPRINT_KEY', 'KEYWRAP_AUDIT_SIGNING_KEY', 'GOOGLE_CLOUD_PROJECT']) {
      assert.match(result.stderr, new RegExp(`- ${setting.replace('.', '\\.')}`), `no word about ${setting}:\n${result.stderr}`)
    }
    assert.deepEqual(await readdir(home), [], 'nothing was created before refusing')
  })
})

describe('start-up cost', () => {
  /** Composes and readies the app as server.ts does, then lists the CommonJS modules the process loaded. */
  async function modulesLoadedAtReady(env: Record<string, string>): Promise<string[]> {
    const script = `
      import { createRequire } from 'node:module'
      import { loadConfig } from './src/config/load-config.ts'
      import { composeDependencies } from './src/compose.ts'
      import { buildApp } from './src/app.ts'
      const deps = await composeDependencies(loadConfig(), { logger: false, stdout: { write: () => true } })
      const app = await buildApp(deps)
      await app.ready()
      process.stdout.write(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)))
      process.exit(0)`
    const home = env.KEYWRAP_HOME ?? (await mkdtemp(join(tmpdir(), 'keywrap-e2e-')))
    const result = await runNode(['--import', 'tsx', '--input-type=module', '-e', script], { ...env, KEYWRAP_HOME: home })
    assert.equal(result.code, 0, result.stderr)
    return JSON.parse(result.stdout) as string[]
  }

  async function packagesLoadedAtReady(env: Record<string, string>): Promise<string[]> {
    const packages = (await modulesLoadedAtReady(env)).map((path) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1])
    return [...new Set(packages)].filter((name): name is string => name !== undefined)
  }

  test("the embedded default loads no Redis client and none of Google's client libraries; a Redis URL loads ioredis", async () => {
    const embedded = await packagesLoadedAtReady({})
    assert.ok(embedded.includes('fastify'), `the listing sees CommonJS packages: ${embedded.join(' ')}`)
    for (const unused of ['ioredis', '@google-cloud/kms', '@google-cloud/logging', 'google-gax', '@grpc/grpc-js']) {
      assert.ok(!embedded.includes(unused), `${unused} was loaded on the embedded default`)
    }
    const withRedis = await packagesLoadedAtReady({ REDIS_URL: 'redis://127.0.0.1:6379' })
    assert.ok(withRedis.includes('ioredis'), `ioredis was not loaded with REDIS_URL: ${withRedis.join(' ')}`)
  })

  test("a Cloud KMS key loads its one client, not the package's other clients nor its static message classes", async () => {
    const standIn = new KmsStandIn()
    const keyName = 'projects/p/locations/global/keyRings/r/cryptoKeys/k'
    standIn.createKey(keyName)
    const running = await standIn.start()
    try {
      const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
      await writeFile(join(home, 'kms.json'), JSON.stringify({ keys: { default: `gcp-kms://${keyName}` } }))
      const packageDirectory = '/@google-cloud/kms/'
      const kmsModules = (await modulesLoadedAtReady({ KEYWRAP_HOME: home, KEYWRAP_CONFIG: join(home, 'kms.json'), KMS_EMULATOR_HOST: running.address }))
        .filter((path) => path.includes(packageDirectory))
        .map((path) => path.slice(path.indexOf(packageDirectory) + packageDirectory.length))
      assert.ok(kmsModules.includes('build/src/v1/key_management_service_client.js'), `the client was not loaded: ${kmsModules.join(' ')}`)
      for (const unused of ['build/src/index.js', 'build/protos/protos.js', 'build/src/v1/ekm_service_client.js', 'build/src/v1/autokey_client.js']) {
        assert.ok(!kmsModules.includes(unused), `${unused} was loaded`)
      }
    } finally {
      await running.close()
    }
  })
})

describe('an unwritable stdout', () => {
  test('key accesses answer 503 audit_unavailable and release nothing; the process stays up', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
    const server = await startServer({ KEYWRAP_HOME: home }, { stdoutFd: openSync('/dev/full', 'w') })
    try {
      const token = (await runCli(['token'], { KEYWRAP_HOME: home })).stdout.trim()
      const refused = await post(server, '/v1/keys/default:generateDataKey', token, {})
      assert.equal(refused.status, 503)
      assert.equal(refused.json.code, 'audit_unavailable')
      assert.ok(!('plaintext' in refused.json))
      assert.equal((await fetch(`${server.baseUrl}/healthz`)).status, 200)
      const readiness = await fetch(`${server.baseUrl}/readyz`)
      assert.equal(readiness.status, 503, 'an instance that cannot audit is not ready')
      assert.equal(((await readiness.json()) as { audit: string }).audit, 'failing')
      assert.match(server.stderr(), /stdout cannot be written/)
    } finally {
      await server.stop()
    }
  })
})

describe('the keywrap command', () => {
  test('explains itself and refuses bad arguments with exit 64', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-cli-'))
    assert.match((await runCli(['help'], { KEYWRAP_HOME: home })).stdout, /token \[--sub NAME\] \[--ttl SECONDS\]/)
    for (const [args, prefix] of [
      [['fly'], 'keywrap: unknown command "fly"'],
      [['keys', 'fly'], 'keywrap: unknown keys action "fly"'],
      [['keys'], 'keywrap: keys needs an action'],
      [['token', '--ttl', '0'], 'keywrap token: --ttl must be 1 to 86400 seconds'],
      [['token', '--help-me'], "keywrap token: Unknown option '--help-me'"],
      [['keys', 'rotate', 'nope'], 'keywrap keys rotate: no key has the alias "nope"'],
      [['keys', 'disable', 'default', 'x'], 'keywrap keys disable: VERSION must be a version number'],
      [['audit', 'verify'], 'keywrap audit verify: name the FILE to verify'],
    ] as const) {
      const result = await runCli([...args], { KEYWRAP_HOME: home })
      assert.equal(result.code, 64, `${args.join(' ')}: ${result.stderr}`)
      assert.ok(result.stderr.startsWith(prefix), `${args.join(' ')}: ${result.stderr}`)
      assert.match(result.stderr, /usage: keywrap /)
    }
  })

  test('every command answers --help and help COMMAND with its usage and exit codes, and --version', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-cli-'))
    const overview = (await runCli(['--help'], { KEYWRAP_HOME: home })).stdout
    const names = [...overview.matchAll(/^ {2}([a-z]+(?: [a-z]+)?)(?= |$)/gm)].map((match) => match[1]!)
    assert.ok(names.includes('token') && names.includes('keys rotate') && names.includes('audit verify'), overview)
    for (const name of names) {
      const viaFlag = await runCli([...name.split(' '), '--help'], { KEYWRAP_HOME: home })
      const viaHelp = await runCli(['help', ...name.split(' ')], { KEYWRAP_HOME: home })
      assert.equal(viaFlag.code, 0, `${name} --help: ${viaFlag.stderr}`)
      assert.equal(viaFlag.stdout, viaHelp.stdout)
      assert.ok(viaFlag.stdout.startsWith(`usage: keywrap ${name}`), viaFlag.stdout)
      assert.match(viaFlag.stdout, /Exit status: 0 .*64 wrong arguments/s)
    }
    for (const group of ['keys', 'audit']) {
      const viaHelp = await runCli(['help', group], { KEYWRAP_HOME: home })
      const viaFlag = await runCli([group, '--help'], { KEYWRAP_HOME: home })
      assert.equal(viaHelp.code, 0, viaHelp.stderr)
      assert.equal(viaFlag.stdout, viaHelp.stdout)
      for (const name of names.filter((name) => name.startsWith(`${group} `))) assert.ok(viaHelp.stdout.includes(`  ${name}`), `${group}: ${name}`)
    }
    const version = await runCli(['--version'], { KEYWRAP_HOME: home })
    assert.equal(version.code, 0)
    assert.match(version.stdout, /^keywrap \d+\.\d+\.\d+\n$/)
  })

  test('token --ttl sets the lifetime', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-cli-'))
    const { stdout } = await runCli(['token', '--sub', 'bob', '--ttl', '120'], { KEYWRAP_HOME: home })
    const claims = JSON.parse(Buffer.from(stdout.trim().split('.')[1]!, 'base64url').toString())
    assert.equal(claims.sub, 'bob')
    assert.equal(claims.exp - claims.iat, 120)
  })
})
