/**
 * Signed checkpoints with a running service, as an operator meets them: `npm start` writing to a file
 * sink, stopped and started again, `keywrap audit public-key` and `keywrap audit verify --public-key`
 * on the trail as written and as cut, killed and edited; and the same signed through Cloud KMS (the
 * stand-in, with the real client).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { kmsKeyEnvironment } from '../support/kms-key-environment.js'
import { KmsStandIn } from '../support/kms-stand-in.js'
import { post, runCli, startServer } from '../support/processes.js'

// Small, with margins: an interval checkpoint is awaited (not timed), and "sealed late" needs 2 × 2 s.
const INTERVAL_SECONDS = '2'

async function trailLines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((line) => line.trim() !== '')
}

/** Waits until `check` holds for the trail's entries (at most 15 s). */
async function waitForTrail(path: string, check: (entries: Record<string, any>[]) => boolean): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (check((await trailLines(path)).map((line) => JSON.parse(line)))) return
    await sleep(100)
  }
  assert.fail(`the trail ${path} never showed what was awaited`)
}

describe('checkpoints of a running service (embedded default, Ed25519 in KEYWRAP_HOME)', () => {
  let directory: string
  let trail: string
  let pem: string
  let env: Record<string, string>
  let token: string

  /** One instance: accesses, an interval checkpoint, more accesses; stopped by `signal`. */
  async function runInstance(signal: 'SIGTERM' | 'SIGKILL'): Promise<string> {
    const before = await trailLines(trail)
    const server = await startServer(env)
    try {
      for (let index = 0; index < 3; index++) assert.equal((await post(server, '/v1/keys/default:generateDataKey', token, {})).status, 200)
      // The start checkpoint is written before the server listens; the accesses follow it in its chain.
      const chain = JSON.parse((await trailLines(trail)).slice(before.length).find((line) => line.includes('"operation":"generateDataKey"'))!).chain as string
      await waitForTrail(trail, (entries) => entries.some((entry) => entry.chain === chain && entry.checkpoint?.event === 'interval'))
      for (let index = 0; index < 2; index++) assert.equal((await post(server, '/v1/keys/default:generateDataKey', token, {})).status, 200)
      const { code } = await server.stop(signal)
      if (signal === 'SIGTERM') assert.equal(code, 0, server.stderr())
      return chain
    } finally {
      // A server a failed assertion left running must not keep the test file alive.
      if (server.process.exitCode === null && server.process.signalCode === null) await server.stop('SIGKILL')
    }
  }

  async function verify(file: string) {
    return runCli(['audit', 'verify', '--public-key', pem, file], {})
  }

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'keywrap-checkpoints-'))
    trail = join(directory, 'audit.jsonl')
    pem = join(directory, 'audit.pem')
    env = { KEYWRAP_HOME: join(directory, 'home'), KEYWRAP_AUDIT_SINK: `file:${trail}`, KEYWRAP_AUDIT_CHECKPOINT_SECONDS: INTERVAL_SECONDS }
    const minted = await runCli(['token', '--sub', 'alice'], { KEYWRAP_HOME: env.KEYWRAP_HOME! })
    assert.equal(minted.code, 0, minted.stderr)
    token = minted.stdout.trim()
  })

  test('two instances with a restart between them: audit verify --public-key finds the trail intact', async () => {
    const chains = [await runInstance('SIGTERM'), await runInstance('SIGTERM')]
    const publicKey = await runCli(['audit', 'public-key'], { KEYWRAP_HOME: env.KEYWRAP_HOME! })
    assert.equal(publicKey.code, 0, publicKey.stderr)
    assert.match(publicKey.stdout, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/)
    await writeFile(pem, publicKey.stdout)

    const entries = (await trailLines(trail)).map((line) => JSON.parse(line))
    for (const chain of chains) {
      const events = entries.filter((entry) => entry.chain === chain && entry.checkpoint).map((entry) => entry.checkpoint.event)
      assert.equal(events[0], 'start')
      assert.ok(events.includes('interval'))
      assert.equal(events.at(-1), 'shutdown')
    }
    const result = await verify(trail)
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.match(result.stdout, /: intact \(2 chains, \d+ entries \(\d+ signed checkpoints checked\), 0 other lines skipped\)\n$/)
  })

  test('the last entries cut: the chain ends without shutdown', async () => {
    const cut = join(directory, 'cut.jsonl')
    await writeFile(cut, `${(await trailLines(trail)).slice(0, -3).join('\n')}\n`)
    const result = await verify(cut)
    assert.equal(result.code, 1)
    assert.match(result.stdout, /: chain ends without shutdown: /)
    assert.match(result.stdout, /: 1 problems /)
  })

  test('a checkpoint edited: bad signature', async () => {
    const lines = await trailLines(trail)
    const at = lines.findIndex((line) => line.includes('"event":"interval"'))
    const edited = join(directory, 'edited.jsonl')
    await writeFile(
      edited,
      `${lines.map((line, index) => (index === at ? line.replace(/"lastSeq":(\d+)/, (_, seq) => `"lastSeq":${Number(seq) - 1}`) : line)).join('\n')}\n`,
    )
    const result = await verify(edited)
    assert.equal(result.code, 1)
    assert.match(result.stdout, new RegExp(`line ${at + 1}: chain \\S+ seq \\d+: bad signature: `))
    assert.match(result.stdout, /hash mismatch/)
  })

  test('an instance killed (no shutdown checkpoint): reported for its chain only', async () => {
    const killed = await runInstance('SIGKILL')
    const result = await verify(trail)
    assert.equal(result.code, 1)
    const problems = result.stdout.trim().split('\n').slice(0, -1)
    assert.equal(problems.length, 1, result.stdout)
    assert.match(
      problems[0]!,
      new RegExp(
        `^chain ${killed}: chain ends without shutdown: its last checkpoint \\(line \\d+, seq \\d+, \\S+\\) is an interval checkpoint, with \\d+ entr(y|ies) after it$`,
      ),
    )
  })
})

describe('checkpoints signed through Cloud KMS (the stand-in, the real client)', () => {
  const kms = new KmsStandIn()
  const signingKey = 'projects/test/locations/global/keyRings/keywrap/cryptoKeys/audit-checkpoints'
  let environment: Awaited<ReturnType<typeof kmsKeyEnvironment>>
  let trail: string

  before(async () => {
    const version = kms.createSigningKey(signingKey)
    const directory = await mkdtemp(join(tmpdir(), 'keywrap-checkpoints-kms-'))
    trail = join(directory, 'audit.jsonl')
    environment = await kmsKeyEnvironment(kms, 'projects/test/locations/global/keyRings/keywrap/cryptoKeys/default', 'default', {
      KEYWRAP_AUDIT_SINK: `file:${trail}`,
      KEYWRAP_AUDIT_SIGNING_KEY: `gcp-kms://${version}`,
      KEYWRAP_AUDIT_CHECKPOINT_SECONDS: INTERVAL_SECONDS,
    })
  })
  after(() => environment.running.close())

  test('AsymmetricSign signs each checkpoint; audit public-key reads GetPublicKey; the trail verifies', async () => {
    const server = await startServer(environment.env)
    const minted = await runCli(['token', '--sub', 'alice'], environment.env)
    assert.equal(minted.code, 0, minted.stderr)
    for (let index = 0; index < 3; index++) assert.equal((await post(server, '/v1/keys/default:generateDataKey', minted.stdout.trim(), {})).status, 200)
    assert.equal((await server.stop('SIGTERM')).code, 0)

    const checkpoints = (await trailLines(trail)).map((line) => JSON.parse(line)).filter((entry) => entry.checkpoint)
    assert.deepEqual([checkpoints[0].checkpoint.event, checkpoints.at(-1).checkpoint.event], ['start', 'shutdown'])
    for (const { checkpoint } of checkpoints)
      assert.deepEqual([checkpoint.algorithm, checkpoint.key], ['EC_SIGN_P256_SHA256', `${signingKey}/cryptoKeyVersions/1`])
    assert.equal(kms.calls.AsymmetricSign, checkpoints.length, 'one AsymmetricSign per checkpoint')

    const publicKey = await runCli(['audit', 'public-key'], environment.env)
    assert.equal(publicKey.code, 0, publicKey.stderr)
    const pem = join(environment.home, 'audit.pem')
    await writeFile(pem, publicKey.stdout)
    const result = await runCli(['audit', 'verify', '--public-key', pem, trail], {})
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.match(result.stdout, /intact \(1 chain, \d+ entries \(\d+ signed checkpoints checked\)/)
  })

  test('a signing key Cloud KMS refuses stops the start with a clear message', async () => {
    kms.deniedKeys.add(signingKey)
    try {
      const result = await startServer(environment.env).then(
        async (server) => {
          await server.stop('SIGKILL')
          return undefined
        },
        (error: Error) => error.message,
      )
      assert.match(result ?? 'it started', new RegExp(`keywrap cannot use its audit signing key ${signingKey}/cryptoKeyVersions/1: 7 PERMISSION_DENIED`))
    } finally {
      kms.deniedKeys.delete(signingKey)
    }
  })
})
