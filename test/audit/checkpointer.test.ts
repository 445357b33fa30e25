/**
 * Signed checkpoints as a sink writes them (the clock and the intervals driven by the test), and what
 * `audit verify --public-key` makes of intact, cut, killed and edited trails.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, verify } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chainHash, GENESIS_HASH, hashedFields } from '../../src/audit/chain.js'
import { signedBytes } from '../../src/audit/checkpoint.js'
import { developmentCheckpointSigner, Ed25519CheckpointSigner, type CheckpointSigner } from '../../src/audit/checkpoint-signer.js'
import { publicKeysFromPem } from '../../src/audit/checkpoint-verifier.js'
import { CheckpointedAuditSink } from '../../src/audit/checkpointer.js'
import { StdoutAuditSink } from '../../src/audit/stdout-sink.js'
import { runAuditVerify, verifyAuditTrail } from '../../src/cli/audit-verify.js'
import { versionUses } from '../../src/cli/audit-versions.js'
import { auditEntry, MemoryLineStream } from './audit-fixtures.js'

const INTERVAL = 60
const T0 = Date.parse('2026-01-01T00:00:00.000Z')

/** A clock the test moves. */
class Clock {
  ms = T0
  now = () => new Date(this.ms)
  advance(seconds: number): void {
    this.ms += seconds * 1000
  }
  iso(): string {
    return new Date(this.ms).toISOString()
  }
}

interface Logged {
  level: 'info' | 'error'
  details: object
  message: string
}

/** A checkpointed stdout sink into `stream`, without a timer: the test takes each interval's checkpoint. */
function checkpointedSink(stream: MemoryLineStream, signer: CheckpointSigner, clock: Clock, logged: Logged[] = []) {
  const sink = new StdoutAuditSink({ projectId: 'test-project', logName: 'keywrap-audit', stream })
  const log = {
    info: (details: object, message: string) => logged.push({ level: 'info', details, message }),
    error: (details: object, message: string) => logged.push({ level: 'error', details, message }),
  }
  const audited = new CheckpointedAuditSink(sink, signer, { intervalSeconds: INTERVAL, log, now: clock.now, timer: false })
  return { sink: audited, checkpointer: audited.checkpointer }
}

function ed25519Signer(): Ed25519CheckpointSigner {
  return new Ed25519CheckpointSigner(generateKeyPairSync('ed25519').privateKey)
}

const lines = (stream: MemoryLineStream) =>
  stream.lines
    .join('')
    .split('\n')
    .filter((line) => line !== '')
const parsed = (stream: MemoryLineStream) => lines(stream).map((line) => JSON.parse(line) as Record<string, any>)

/** Writes `count` key accesses at the clock's time. */
async function accesses(sink: { write: CheckpointedAuditSink['write'] }, clock: Clock, count: number): Promise<void> {
  for (let index = 0; index < count; index++) await sink.write(auditEntry({ time: clock.iso(), requestId: `r-${clock.ms}-${index}` }))
}

/** The lines of a trail of one instance: start, entries over two intervals, shutdown. */
async function oneInstance(signer: CheckpointSigner, clock: Clock): Promise<string[]> {
  const stream = new MemoryLineStream()
  const { sink, checkpointer } = checkpointedSink(stream, signer, clock)
  await checkpointer.checkpoint()
  await accesses(sink, clock, 3)
  clock.advance(INTERVAL)
  await checkpointer.checkpoint()
  await accesses(sink, clock, 2)
  clock.advance(10)
  await sink.close()
  return lines(stream)
}

async function publicKeysOf(signer: CheckpointSigner) {
  return publicKeysFromPem(await signer.publicKeyPem())
}

/** Rewrites line `index` with `change`, then re-hashes that chain from there on, as someone who can rewrite the whole trail could. */
function rewrite(trail: readonly string[], index: number, change: (entry: Record<string, any>) => void): string[] {
  const entries = trail.map((line) => JSON.parse(line) as Record<string, any>)
  change(entries[index]!)
  const chain = entries[index]!.chain
  let previous = GENESIS_HASH
  for (const entry of entries.filter((e) => e.chain === chain)) {
    entry.hash = chainHash(previous, hashedFields(entry))
    previous = entry.hash
  }
  return entries.map((entry) => JSON.stringify(entry))
}

describe('checkpoints written', () => {
  test('start, one per interval with entries, none when idle, shutdown; each signed, naming the one before', async () => {
    const clock = new Clock()
    const signer = ed25519Signer()
    const stream = new MemoryLineStream()
    const { sink, checkpointer } = checkpointedSink(stream, signer, clock)
    await checkpointer.checkpoint()
    await accesses(sink, clock, 3)
    clock.advance(INTERVAL)
    await checkpointer.checkpoint()
    clock.advance(INTERVAL)
    await checkpointer.checkpoint() // idle: nothing since the last one
    clock.advance(5)
    await Promise.all([sink.close(), sink.close()]) // one shutdown checkpoint, however often it is closed

    const written = parsed(stream)
    const checkpoints = written.filter((line) => line.operation === 'audit.checkpoint')
    assert.deepEqual(
      checkpoints.map((line) => [line.seq, line.checkpoint.event, line.checkpoint.lastSeq, line.time]),
      [
        [1, 'start', 0, '2026-01-01T00:00:00.000Z'],
        [5, 'interval', 4, '2026-01-01T00:01:00.000Z'],
        [6, 'shutdown', 5, '2026-01-01T00:02:05.000Z'],
      ],
    )
    const [start, interval, shutdown] = checkpoints as [Record<string, any>, Record<string, any>, Record<string, any>]
    assert.equal(start.checkpoint.lastHash, GENESIS_HASH)
    assert.equal(start.checkpoint.previousCheckpoint, GENESIS_HASH)
    assert.equal(interval.checkpoint.lastHash, written[3]!.hash)
    assert.equal(interval.checkpoint.previousCheckpoint, start.hash)
    assert.equal(shutdown.checkpoint.previousCheckpoint, interval.hash)
    assert.equal(shutdown.checkpoint.lastHash, interval.hash)
    for (const line of checkpoints) {
      assert.equal(line.severity, 'INFO')
      assert.deepEqual(line['logging.googleapis.com/labels'], { audit: 'true' })
      assert.equal(line.checkpoint.chain, line.chain)
      assert.equal(line.checkpoint.intervalSeconds, INTERVAL)
      assert.equal(line.checkpoint.algorithm, 'ED25519')
      assert.equal(line.checkpoint.key, signer.keyId)
      assert.equal(line['logging.googleapis.com/operation'], undefined)
      assert.match(line.message, /^audit checkpoint (start|interval|shutdown) /)
      const [publicKey] = await publicKeysOf(signer)
      assert.ok(verify(null, signedBytes(line.checkpoint), publicKey!, Buffer.from(line.checkpoint.signature, 'base64')))
    }
    const result = await verifyAuditTrail(lines(stream), { publicKeys: await publicKeysOf(signer) })
    assert.deepEqual(result, { ok: true, chains: 1, entries: 6, skipped: 0, checkpoints: 3, signaturesChecked: true, problems: [] })
  })

  test('checkpoints are not key accesses: audit versions counts none of them', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'keywrap-checkpoints-')), 'trail.jsonl')
    await writeFile(file, `${(await oneInstance(ed25519Signer(), new Clock())).join('\n')}\n`)
    const rows = await versionUses([file])
    assert.deepEqual(
      rows.map((row) => [row.keyVersion, row.unwraps]),
      [['local://default/versions/1', 5]],
    )
  })

  test('a signer that fails: key accesses go on, the failure is logged once, the next interval takes the checkpoint', async () => {
    const clock = new Clock()
    const real = ed25519Signer()
    let failing = true
    const signer: CheckpointSigner = {
      algorithm: real.algorithm,
      keyId: real.keyId,
      sign: async (data) => {
        if (failing) throw new Error('14 UNAVAILABLE: Cloud KMS is unreachable')
        return real.sign(data)
      },
      publicKeyPem: () => real.publicKeyPem(),
      close: async () => undefined,
    }
    const logged: Logged[] = []
    const stream = new MemoryLineStream()
    const { sink, checkpointer } = checkpointedSink(stream, signer, clock, logged)
    await checkpointer.checkpoint()
    await accesses(sink, clock, 2)
    clock.advance(INTERVAL)
    await checkpointer.checkpoint()
    assert.deepEqual(
      logged.map((entry) => entry.level),
      ['error'],
      'one error for two failures',
    )
    assert.match(logged[0]!.message, /audit checkpoint not written; retrying at the next interval/)
    assert.match(JSON.stringify(logged[0]!.details), /Cloud KMS is unreachable/)

    failing = false
    clock.advance(INTERVAL + 1)
    await checkpointer.checkpoint()
    assert.deepEqual(
      logged.map((entry) => entry.level),
      ['error', 'info'],
    )
    await sink.close()

    const written = parsed(stream)
    assert.deepEqual(
      written.map((line) => line.checkpoint?.event ?? line.operation),
      ['unwrap', 'unwrap', 'start', 'shutdown'],
    )
    // The entries waited two intervals for their first checkpoint: verify shows the gap.
    const result = await verifyAuditTrail(lines(stream), { publicKeys: await publicKeysOf(real) })
    assert.equal(result.ok, false)
    assert.deepEqual(
      result.problems.map((problem) => problem.replace(/chain \S+: /, 'chain C: ')),
      [
        'chain C: sealed late: 2 entries (seq 1-2) waited 121.0 s for the checkpoint at line 3 (more than two intervals of 60 s: checkpoints were not written meanwhile)',
      ],
    )
  })

  test('a slow signer holds up no key access', async () => {
    const clock = new Clock()
    const real = ed25519Signer()
    let release: () => void = () => undefined
    const held = new Promise<void>((resolve) => (release = resolve))
    const signer: CheckpointSigner = {
      algorithm: real.algorithm,
      keyId: real.keyId,
      sign: async (data) => {
        await held
        return real.sign(data)
      },
      publicKeyPem: () => real.publicKeyPem(),
      close: async () => undefined,
    }
    const stream = new MemoryLineStream()
    const { sink, checkpointer } = checkpointedSink(stream, signer, clock)
    const start = checkpointer.checkpoint()
    await accesses(sink, clock, 3)
    assert.deepEqual(
      parsed(stream).map((line) => line.operation),
      ['unwrap', 'unwrap', 'unwrap'],
    )
    release()
    await start
    await sink.close()
    const written = parsed(stream)
    assert.deepEqual(
      written.map((line) => [line.seq, line.checkpoint?.event ?? line.operation, line.checkpoint?.lastSeq]),
      [
        [1, 'unwrap', undefined],
        [2, 'unwrap', undefined],
        [3, 'unwrap', undefined],
        [4, 'start', 0],
        [5, 'shutdown', 4],
      ],
    )
    assert.equal((await verifyAuditTrail(lines(stream), { publicKeys: await publicKeysOf(real) })).ok, true)
  })

  test('after a failed write the new chain gets its own start checkpoint', async () => {
    const clock = new Clock()
    const signer = ed25519Signer()
    const stream = new MemoryLineStream()
    const { sink, checkpointer } = checkpointedSink(stream, signer, clock)
    await checkpointer.checkpoint()
    stream.failing = new Error('EPIPE')
    await assert.rejects(sink.write(auditEntry({ time: clock.iso() })), /EPIPE/)
    stream.failing = undefined
    await accesses(sink, clock, 1)
    clock.advance(INTERVAL)
    await checkpointer.checkpoint()
    await sink.close()
    const written = parsed(stream)
    const chains = [...new Set(written.map((line) => line.chain))]
    assert.equal(chains.length, 2)
    assert.deepEqual(
      written.map((line) => [chains.indexOf(line.chain), line.seq, line.checkpoint?.event ?? line.operation]),
      [
        [0, 1, 'start'],
        [1, 1, 'unwrap'],
        [1, 2, 'start'],
        [1, 3, 'shutdown'],
      ],
    )
    const result = await verifyAuditTrail(lines(stream), { publicKeys: await publicKeysOf(signer) })
    assert.deepEqual(
      result.problems.map((problem) => problem.replace(/ \(line.*$/, '')),
      [`chain ${chains[0]}: chain ends without shutdown: its last checkpoint`],
    )
  })

  test('the embedded default keeps its Ed25519 key in KEYWRAP_HOME, 0600, the same for every process', async () => {
    const home = join(await mkdtemp(join(tmpdir(), 'keywrap-home-')), 'nested')
    const [first, second] = await Promise.all([developmentCheckpointSigner(home), developmentCheckpointSigner(home)])
    assert.equal(first.keyId, second.keyId)
    assert.match(first.keyId, /^ed25519:[0-9a-f]{64}$/)
    const { stat } = await import('node:fs/promises')
    assert.equal((await stat(join(home, 'audit-signing.pem'))).mode & 0o777, 0o600)
    assert.match(await first.publicKeyPem(), /^-----BEGIN PUBLIC KEY-----\n/)
  })
})

describe('audit verify --public-key', () => {
  test('two instances with a restart between them verify clean', async () => {
    const clock = new Clock()
    const signer = ed25519Signer()
    const trail = [...(await oneInstance(signer, clock)), ...(await oneInstance(signer, clock))]
    const result = await verifyAuditTrail(trail, { publicKeys: await publicKeysOf(signer) })
    assert.deepEqual(result, { ok: true, chains: 2, entries: 16, skipped: 0, checkpoints: 6, signaturesChecked: true, problems: [] })
  })

  test('a cut tail: the chain ends without its shutdown checkpoint', async () => {
    const clock = new Clock()
    const signer = ed25519Signer()
    const trail = await oneInstance(signer, clock)
    const result = await verifyAuditTrail(trail.slice(0, -2), { publicKeys: await publicKeysOf(signer) })
    assert.equal(result.ok, false)
    assert.equal(result.problems.length, 1)
    assert.match(
      result.problems[0]!,
      /^chain \S+: chain ends without shutdown: its last checkpoint \(line 5, seq 5, 2026-01-01T00:01:00.000Z\) is an interval checkpoint, with 1 entry after it$/,
    )
  })

  test('entries left after the last checkpoint for more than two intervals: unsealed tail', async () => {
    const clock = new Clock()
    const signer = ed25519Signer()
    const killed = new MemoryLineStream()
    const first = checkpointedSink(killed, signer, clock)
    await first.checkpointer.checkpoint()
    await accesses(first.sink, clock, 2)
    // The process is killed here: no more checkpoints. Another instance writes on, three intervals later.
    clock.advance(3 * INTERVAL)
    const trail = [...lines(killed), ...(await oneInstance(signer, clock))]
    const result = await verifyAuditTrail(trail, { publicKeys: await publicKeysOf(signer) })
    assert.deepEqual(
      result.problems.map((problem) => problem.replace(/chain \S+: /, '')),
      [
        'chain ends without shutdown: its last checkpoint (line 1, seq 1, 2026-01-01T00:00:00.000Z) is a start checkpoint, with 2 entries after it',
        'unsealed tail: 2 entries (seq 2-3) from 2026-01-01T00:00:00.000Z on, with no checkpoint after them, and the trail goes on to 2026-01-01T00:04:10.000Z (more than two intervals of 60 s)',
      ],
    )
  })

  test('an edited checkpoint: its hash, and once the chain is re-hashed, its signature', async () => {
    const clock = new Clock()
    const signer = ed25519Signer()
    const trail = await oneInstance(signer, clock)
    const publicKeys = await publicKeysOf(signer)
    const checkpointAt = trail.findIndex((line) => line.includes('"event":"interval"'))

    const edited = trail.map((line, index) => (index === checkpointAt ? line.replace('"intervalSeconds":60', '"intervalSeconds":600') : line))
    const plain = await verifyAuditTrail(edited, { publicKeys })
    assert.ok(plain.problems.some((problem) => /hash mismatch/.test(problem)))
    assert.ok(plain.problems.some((problem) => /bad signature/.test(problem)))

    // Whoever re-hashes the chain after the edit cannot sign the checkpoint anew.
    const rehashed = rewrite(trail, checkpointAt, (entry) => (entry.checkpoint.lastSeq = 2))
    const result = await verifyAuditTrail(rehashed, { publicKeys })
    const problems = result.problems.map((problem) => problem.replace(/chain \S+ /, 'chain C '))
    assert.ok(!problems.some((problem) => /hash mismatch/.test(problem)))
    assert.equal(
      problems[0],
      `line ${checkpointAt + 1}: chain C seq ${checkpointAt + 1}: bad signature: the checkpoint does not verify with the public key given (ED25519, key ${signer.keyId})`,
    )
    assert.ok(
      problems.includes(
        `line ${checkpointAt + 1}: chain C seq ${checkpointAt + 1}: checkpoint seals seq 2 with hash ${JSON.parse(trail[checkpointAt]!).checkpoint.lastHash.slice(0, 12)}…, but the entry there has ${JSON.parse(trail[1]!).hash.slice(0, 12)}…`,
      ),
      problems.join('\n'),
    )
  })

  test('a checkpoint removed and the chain re-hashed: the next one does not follow', async () => {
    const clock = new Clock()
    const signer = ed25519Signer()
    const trail = await oneInstance(signer, clock)
    const checkpointAt = trail.findIndex((line) => line.includes('"event":"interval"'))
    const without = trail
      .filter((_, index) => index !== checkpointAt)
      .map((line) => {
        const entry = JSON.parse(line)
        if (entry.seq > checkpointAt + 1) entry.seq--
        return JSON.stringify(entry)
      })
    const result = await verifyAuditTrail(
      rewrite(without, 0, () => undefined),
      { publicKeys: await publicKeysOf(signer) },
    )
    assert.ok(
      result.problems.some((problem) => /checkpoint does not follow the one before it/.test(problem)),
      result.problems.join('\n'),
    )
  })

  test('another key: every signature is bad', async () => {
    const clock = new Clock()
    const trail = await oneInstance(ed25519Signer(), clock)
    const result = await verifyAuditTrail(trail, { publicKeys: await publicKeysOf(ed25519Signer()) })
    assert.equal(result.problems.filter((problem) => /bad signature/.test(problem)).length, 3)
  })

  test('the command: intact with the key, a note without it, 66 for a key file that cannot be used', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'keywrap-checkpoints-'))
    const signer = ed25519Signer()
    const trail = join(directory, 'trail.jsonl')
    await writeFile(trail, `${(await oneInstance(signer, new Clock())).join('\n')}\n`)
    const pem = join(directory, 'audit.pem')
    await writeFile(pem, await signer.publicKeyPem())
    const capture = async (args: string[]) => {
      let stdout = ''
      let stderr = ''
      const code = await runAuditVerify(args, { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } })
      return { code, stdout, stderr }
    }
    assert.deepEqual(await capture(['--public-key', pem, trail]), {
      code: 0,
      stdout: `${trail}: intact (1 chain, 8 entries (3 signed checkpoints checked), 0 other lines skipped)\n`,
      stderr: '',
    })
    assert.deepEqual(await capture([trail]), {
      code: 0,
      stdout: `${trail}: intact (1 chain, 8 entries, 0 other lines skipped)\ncheckpoint signatures not checked (3 checkpoints): give --public-key to check them and the ends of the chains\n`,
      stderr: '',
    })
    const missing = await capture(['--public-key', join(directory, 'nothing.pem'), trail])
    assert.equal(missing.code, 66)
    assert.match(missing.stderr, /--public-key \S+nothing\.pem cannot be read \(ENOENT\)/)
    const notPem = join(directory, 'not.pem')
    await writeFile(notPem, 'hello')
    assert.equal((await capture(['--public-key', notPem, trail])).code, 66)
  })
})
