/**
 * The command list is loaded by every `keywrap` run, whatever the command: it must not load what only
 * one command needs (gRPC and the KMS plugin's server, Google's client libraries), or `keywrap
 * encrypt` pays their memory and start-up time.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { REPO_ROOT } from '../support/processes.js'

test('listing the commands loads no gRPC or Google library', () => {
  const script = `
    const { createRequire } = await import('node:module')
    const { COMMANDS } = await import('./src/cli/commands.ts')
    const loaded = Object.keys(createRequire(process.cwd() + '/').cache)
    process.stdout.write(JSON.stringify({ commands: COMMANDS.length, heavy: loaded.filter((path) => /node_modules\\/(@grpc|@google-cloud|google-gax|protobufjs)\\//.test(path)) }))
  `
  const { commands, heavy } = JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' }),
  )
  assert.ok(commands >= 12, `${commands} commands`)
  assert.deepEqual(heavy, [])
})
