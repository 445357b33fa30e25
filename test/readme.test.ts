/** The README is a promise: its walkthrough works when pasted, and it documents every setting. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { ENVIRONMENT_SETTINGS } from '../src/config/load-config.js'
import { REPO_ROOT, startServer } from './support/processes.js'

const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8')

test('the README documents every environment setting with its default', () => {
  for (const [name, fallback] of Object.entries(ENVIRONMENT_SETTINGS)) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`))
    assert.ok(row, `README.md has no row for ${name}`)
    assert.ok(row.includes(fallback.includes('(none)') ? '(none)' : fallback.split(' ')[0]!), `README.md row for ${name} does not give its default ${fallback}`)
  }
})

test('the walkthrough runs as pasted against npm start', async () => {
  const block = /<!-- walkthrough:start -->\n```sh\n([\s\S]*?)```\n<!-- walkthrough:end -->/.exec(readme)?.[1]
  assert.ok(block, 'README.md has no walkthrough block')
  const home = await mkdtemp(join(tmpdir(), 'keywrap-readme-'))
  const server = await startServer({ KEYWRAP_HOME: home })
  try {
    const port = new URL(server.baseUrl).port
    const script = `set -euo pipefail\n${block.replaceAll('localhost:8080', `localhost:${port}`)}`
    // As a user's shell: without the npm_config_* of whatever npm or npx runs this test (under `npx -c`,
    // they would turn the walkthrough's own `npx keywrap` into a usage error).
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_config_')))
    const shell = spawn('bash', ['-c', script], { cwd: REPO_ROOT, env: { ...env, KEYWRAP_HOME: home } })
    let output = ''
    shell.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    shell.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const [code] = (await once(shell, 'exit')) as [number]
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
