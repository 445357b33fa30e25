/**
 * The two ways to run keywrap outside the container, started as a user starts them (through npm),
 * and stopped as a platform stops them: SIGTERM to the pid it started.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT, runNode, startServer, userEnv, type RunningServer } from './support/processes.js'

const execFileAsync = promisify(execFile)

/** Whether anything still accepts connections on the server's port. */
async function listening(server: RunningServer): Promise<boolean> {
  const { port } = new URL(server.baseUrl)
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** SIGTERM to the pid that was started (npm's own): the process exits and nothing listens any more. */
async function stopsOnSigterm(server: RunningServer): Promise<void> {
  assert.equal(await listening(server), true)
  const { code } = await server.stop('SIGTERM')
  for (let i = 0; i < 50 && (await listening(server)); i++) await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(await listening(server), false, `still listening on ${server.baseUrl} after npm exited with ${code}`)
}

describe('npm start (TypeScript through tsx)', () => {
  test("SIGTERM to npm's pid stops the server", async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
    const server = await startServer({ KEYWRAP_HOME: home }, { command: ['npm', 'start'] })
    assert.equal((await fetch(`${server.baseUrl}/healthz`)).status, 200)
    await stopsOnSigterm(server)
    assert.match(server.stdout(), /"signal":"SIGTERM","message":"shutting down"/, 'node shut down in order, not killed')
  })
})

describe('npm run build, npm prune --omit=dev, npm run start:prod', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keywrap-build-'))
    for (const name of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'openapi.yaml', 'src', 'routes', 'bin', 'client/src']) {
      await cp(join(REPO_ROOT, name), join(dir, name), { recursive: true })
    }
    // Stands in for `npm ci`: the same installed tree, as hard links where the file system allows.
    await execFileAsync('cp', ['-al', join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules')]).catch(() =>
      execFileAsync('cp', ['-a', join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules')]),
    )
    await execFileAsync('npm', ['run', 'build'], { cwd: dir, env: userEnv() })
    await execFileAsync('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: dir, env: userEnv() })
  })
  after(() => rm(dir, { recursive: true, force: true }))

  test('no dev dependency is left', () => {
    for (const name of ['tsx', 'typescript', 'eslint', 'esbuild']) assert.ok(!existsSync(join(dir, 'node_modules', name)), `${name} is still installed`)
    assert.ok(existsSync(join(dir, 'dist/src/server.js')))
  })

  test("start:prod serves the API and the CLI mints a token it trusts; SIGTERM to npm's pid stops it", async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
    const server = await startServer({ KEYWRAP_HOME: home }, { command: ['npm', 'run', 'start:prod'], cwd: dir })
    const token = await runNode([join(dir, 'bin/keywrap.js'), 'token'], { KEYWRAP_HOME: home })
    assert.equal(token.code, 0, token.stderr)
    const response = await fetch(`${server.baseUrl}/v1/keys/default:generateDataKey`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token.stdout.trim()}`, 'content-type': 'application/json' },
      body: '{}',
    })
    assert.equal(response.status, 200, await response.clone().text())
    assert.equal((await fetch(`${server.baseUrl}/docs/`)).status, 200)
    await stopsOnSigterm(server)
    assert.match(server.stdout(), /"signal":"SIGTERM","message":"shutting down"/)
  })

  test('the compiled server uses the route schemas compiled by the build, and never loads Ajv', async () => {
    const manifest = JSON.parse(await readFile(join(dir, 'dist/schemas/manifest.json'), 'utf8')) as { validators: object; serializers: object }
    assert.ok(Object.keys(manifest.validators).length > 0 && Object.keys(manifest.serializers).length > 0)
    // Lists, as the process exits, the modules of Ajv and of the schema compilers it loaded.
    const probe = join(dir, 'loaded-modules.cjs')
    await writeFile(
      probe,
      `process.on('exit', () => require('node:fs').writeSync(2, 'loaded: ' + JSON.stringify(Object.keys(require.cache).filter((name) => /node_modules\\/(ajv|ajv-formats|fast-json-stringify|@fastify\\/ajv-compiler|@fastify\\/fast-json-stringify-compiler)\\//.test(name)).map((name) => name.replace(/.*node_modules\\//, ''))) + '\\n'))\n`,
    )
    const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
    const server = await startServer(
      { KEYWRAP_HOME: home, NODE_OPTIONS: `--require ${probe}` },
      { command: [process.execPath, 'dist/src/server.js'], cwd: dir },
    )
    const token = await runNode([join(dir, 'bin/keywrap.js'), 'token'], { KEYWRAP_HOME: home })
    const response = await fetch(`${server.baseUrl}/v1/keys/default:wrap`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token.stdout.trim()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ plaintext: 'AAAA', undeclared: true }),
    })
    assert.equal(response.status, 400)
    assert.match(((await response.json()) as { detail: string }).detail, /\/body\/undeclared is not a known field/)
    await server.stop('SIGTERM')
    const loaded = JSON.parse(/loaded: (.*)/.exec(server.stderr())?.[1] ?? 'null') as string[]
    assert.ok(loaded.length > 0, server.stderr())
    assert.deepEqual(
      loaded.filter(
        (name) =>
          !name.startsWith('ajv/dist/runtime/') && !name.startsWith('fast-json-stringify/lib/serializer') && !name.startsWith('fast-json-stringify/lib/v8'),
      ),
      [],
      'only the runtime helpers of the generated code',
    )
  })
})
