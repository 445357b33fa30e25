/**
 * The README is a promise: its walkthroughs work when pasted, it stays user documentation, and every
 * setting is documented (the full reference in docs/configuration.md, the most used in the README).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { ENVIRONMENT_SETTINGS } from '../src/config/load-config.js'
import { REPO_ROOT, startServer, userEnv } from './support/processes.js'
import { freePort } from './support/redis-server.js'

const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8')
const configurationReference = await readFile(join(REPO_ROOT, 'docs/configuration.md'), 'utf8')
const howItWorks = await readFile(join(REPO_ROOT, 'docs/how-it-works.md'), 'utf8')

/** Whether nothing accepts connections on `port` within 10 s (a process that got SIGTERM may take a moment). */
async function stopsListening(port: number): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const listening = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
      () => true,
      (error: Error) => !String((error.cause as { code?: string } | undefined)?.code).includes('ECONNREFUSED'),
    )
    if (!listening) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

const settingRow = (document: string, name: string) => document.split('\n').find((line) => line.startsWith(`| \`${name}\` |`))
const givesDefault = (row: string, fallback: string) => row.includes(fallback.includes('(none)') ? '(none)' : fallback.split(' ')[0]!)

test('docs/configuration.md documents every environment setting with its default', () => {
  for (const [name, fallback] of Object.entries(ENVIRONMENT_SETTINGS)) {
    const row = settingRow(configurationReference, name)
    assert.ok(row, `docs/configuration.md has no row for ${name}`)
    assert.ok(givesDefault(row, fallback), `docs/configuration.md row for ${name} does not give its default ${fallback}`)
  }
})

test("the README's settings table gives the real defaults and links the full reference", () => {
  const rows = readme.split('\n').filter((line) => /^\| `[A-Z_]+` \|/.test(line))
  assert.ok(rows.length >= 5, 'README.md has no settings table')
  for (const row of rows) {
    const name = /^\| `([A-Z_]+)` \|/.exec(row)![1]!
    const fallback = (ENVIRONMENT_SETTINGS as Record<string, string>)[name]
    assert.ok(fallback, `README.md documents ${name}, which is not a setting`)
    assert.ok(givesDefault(row, fallback), `README.md row for ${name} does not give its default ${fallback}`)
  }
  assert.match(readme, /\(docs\/configuration\.md\)/)
})

test('the README is user documentation: under 15 KiB, and no word of how it was made', () => {
  assert.ok(Buffer.byteLength(readme) <= 15 * 1024, `README.md is ${Buffer.byteLength(readme)} bytes; move reference material to docs/`)
  assert.doesNotMatch(readme, /\bsessions?\b|\bhelpers?\b/i)
})

/** The `sh` block between `<!-- NAME:start -->` and `<!-- NAME:end -->` of a document (the README's by default). */
function shellBlock(name: string, document = readme, file = 'README.md'): string {
  const block = new RegExp(`<!-- ${name}:start -->\\n\`\`\`sh\\n([\\s\\S]*?)\`\`\`\\n<!-- ${name}:end -->`).exec(document)?.[1]
  assert.ok(block, `${file} has no ${name} block`)
  return block
}

/**
 * Runs `script` in bash as a user's shell would: without the npm_config_* of whatever npm or npx runs
 * this test (under `npx -c`, they would turn the walkthrough's own `npx keywrap` into a usage error).
 */
async function runAsPasted(script: string, home: string): Promise<{ code: number; output: string }> {
  const shell = spawn('bash', ['-c', script], { cwd: REPO_ROOT, env: { ...userEnv(), KEYWRAP_HOME: home } })
  let output = ''
  shell.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  shell.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const [code] = (await once(shell, 'exit')) as [number]
  return { code, output }
}

test('the walkthrough runs as pasted against npm start', async () => {
  const block = shellBlock('walkthrough')
  const home = await mkdtemp(join(tmpdir(), 'keywrap-readme-'))
  const server = await startServer({ KEYWRAP_HOME: home })
  try {
    const port = new URL(server.baseUrl).port
    const { code, output } = await runAsPasted(`set -euo pipefail\n${block.replaceAll('localhost:8080', `localhost:${port}`)}`, home)
    assert.equal(code, 0, output)
    const lines = output.trim().split('\n')
    const generated = JSON.parse(lines[0]!)
    assert.equal(JSON.parse(lines[1]!).plaintext, generated.plaintext)
    assert.equal(JSON.parse(lines[2]!).code, 'cannot_unwrap')
    assert.match(lines[3]!, /version 2 is now primary/)
    assert.equal(JSON.parse(lines[4]!).rewrapped, true)
    assert.deepEqual(JSON.parse(lines[5]!), { plaintext: generated.plaintext, keyVersion: 'local://default/versions/2', primary: true })
    assert.equal(JSON.parse(lines[6]!).primaryVersion, 2)
    assert.deepEqual(JSON.parse(lines[7]!), { keys: [{ alias: 'default' }] })
  } finally {
    await server.stop()
  }
})

test('the Cloud KMS walkthrough (docs/how-it-works.md) waits for readiness, works against the stand-in, and stops what it started', async () => {
  const block = shellBlock('kms-walkthrough', howItWorks, 'docs/how-it-works.md')
  assert.doesNotMatch(block, /^sleep /m, 'the walkthrough waits on a fixed sleep instead of /readyz')
  const home = await mkdtemp(join(tmpdir(), 'keywrap-readme-kms-'))
  const [kmsPort, keywrapPort] = [await freePort(), await freePort()]
  // `set -m` gives each background job its own process group, as in the interactive shell it is pasted into.
  // After the block: give its jobs 10 s to end; any still running fails the script and is stopped here.
  const afterwards =
    'for _ in $(seq 100); do [ -z "$(jobs -rp)" ] && exit 0; sleep 0.1; done\n' +
    'echo "still running after the walkthrough: $(jobs -rp)"; for pid in $(jobs -rp); do kill -- "-$pid"; done; exit 1\n'
  const script = `set -euo pipefail\nset -m\n${block.replaceAll('8085', String(kmsPort)).replaceAll('8081', String(keywrapPort))}${afterwards}`
  const { code, output } = await runAsPasted(script, home)
  assert.equal(code, 0, output)
  const answers = output.split('\n').filter((line) => line.startsWith('{"') && !line.startsWith('{"severity"'))
  const generated = JSON.parse(answers[0] ?? '{}')
  assert.match(generated.keyVersion ?? '', /^projects\/local\/locations\/global\/keyRings\/keywrap\/cryptoKeys\/default\/cryptoKeyVersions\/1$/, output)
  assert.equal(JSON.parse(answers[1] ?? '{}').provider, 'gcp-kms', output)
  for (const port of [kmsPort, keywrapPort]) assert.equal(await stopsListening(port), true, `something still listens on ${port} after the walkthrough`)
})
