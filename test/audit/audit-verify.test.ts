import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chainHash, GENESIS_HASH, hashedFields } from '../../src/audit/chain.js'
import { StdoutAuditSink } from '../../src/audit/stdout-sink.js'
import { runAuditVerify, verifyAuditTrail } from '../../src/cli/audit-verify.js'
import { MemoryLineStream, mixedEntry, range } from './audit-fixtures.js'

/** The audit lines of `count` writes, spread over `chains` sinks, in the order written. */
async function trail(count: number, chains = 1): Promise<string[]> {
  const stream = new MemoryLineStream()
  const sinks = range(1, chains).map(() => new StdoutAuditSink({ projectId: 'test-project', logName: 'keywrap-audit', stream }))
  for (const index of range(0, count - 1)) await sinks[index % chains]!.write(mixedEntry(index))
  await Promise.all(sinks.map((sink) => sink.close()))
  return stream.lines
    .join('')
    .split('\n')
    .filter((line) => line.includes('"chain"'))
}

const seqOf = (line: string) => JSON.parse(line).seq as number

/** A stdout line as Cloud Run ingests and a log sink exports it: special fields lifted out, `time` into the timestamp. */
function asCloudRunExport(line: string): string {
  const {
    severity,
    time,
    timestamp: _timestamp,
    'logging.googleapis.com/labels': labels,
    'logging.googleapis.com/insertId': insertId,
    'logging.googleapis.com/trace': trace,
    'logging.googleapis.com/spanId': spanId,
    'logging.googleapis.com/operation': operation,
    ...payload
  } = JSON.parse(line)
  const timestamp = (time as string).replace(/\.(\d{3})Z$/, '.$1000000Z')
  return JSON.stringify({
    insertId,
    jsonPayload: payload,
    resource: { type: 'cloud_run_revision', labels: { service_name: 'keywrap' } },
    timestamp,
    severity,
    labels,
    logName: 'projects/test-project/logs/run.googleapis.com%2Fstdout',
    trace,
    spanId,
    operation,
    receiveTimestamp: timestamp,
  })
}

function edit(line: string, change: (entry: Record<string, any>) => void): string {
  const entry = JSON.parse(line) as Record<string, any>
  change(entry)
  return JSON.stringify(entry)
}

describe('verifyAuditTrail', () => {
  test('an intact trail verifies; other lines are skipped', async () => {
    const lines = await trail(20)
    const mixed = [
      '{"severity":"INFO","message":"incoming request","req":{"method":"POST"}}',
      ...lines.slice(0, 10),
      '{"logging.googleapis.com/diagnostic":{"instrumentation_source":[{"name":"nodejs","version":"11.2.1"}]}}',
      '',
      'not json at all',
      ...lines.slice(10),
    ]
    const result = await verifyAuditTrail(mixed)
    assert.deepEqual(result, { ok: true, chains: 1, entries: 20, skipped: 4, checkpoints: 0, signaturesChecked: false, problems: [] })
  })

  test('reads an async iterable too', async () => {
    const lines = await trail(5)
    const result = await verifyAuditTrail(
      (async function* () {
        yield* lines
      })(),
    )
    assert.equal(result.ok, true)
    assert.equal(result.entries, 5)
  })

  test('a deleted line is a gap', async () => {
    const lines = await trail(10)
    lines.splice(4, 1)
    const result = await verifyAuditTrail(lines)
    assert.equal(result.ok, false)
    assert.equal(result.problems.length, 1)
    assert.match(result.problems[0]!, /seq 5 is missing \(after line 4, before line 5\)/)
  })

  test('deleted lines at the start and a run in the middle are gaps', async () => {
    const lines = await trail(12)
    const cut = [...lines.slice(1, 3), ...lines.slice(6)]
    const result = await verifyAuditTrail(cut)
    assert.deepEqual(
      result.problems.map((problem) => problem.replace(/^chain \S+: /, '')),
      ['seq 1 is missing (before line 1)', 'seq 4-6 are missing (after line 2, before line 3)'],
    )
  })

  test('an edited entry is a hash mismatch at that entry', async () => {
    const lines = await trail(10)
    lines[3] = edit(lines[3]!, (entry) => (entry.principal = 'mallory'))
    const result = await verifyAuditTrail(lines)
    assert.equal(result.problems.length, 1)
    assert.match(result.problems[0]!, /^line 4: chain \S+ seq 4: hash mismatch/)
  })

  test('an edit whose own hash was recomputed shows at the next entry', async () => {
    const lines = await trail(10)
    const previousHash = JSON.parse(lines[2]!).hash as string
    lines[3] = edit(lines[3]!, (entry) => {
      entry.outcome = 'denied'
      entry.severity = 'WARNING'
      entry.hash = chainHash(previousHash, hashedFields(entry))
    })
    const result = await verifyAuditTrail(lines)
    assert.equal(result.problems.length, 1)
    assert.match(result.problems[0]!, /^line 5: chain \S+ seq 5: hash mismatch/)
  })

  test('an edit to what the hash does not cover (the summary) passes', async () => {
    const lines = await trail(3)
    lines[1] = edit(lines[1]!, (entry) => (entry.message = 'reworded'))
    assert.equal((await verifyAuditTrail(lines)).ok, true)
  })

  test('a severity that does not match the outcome is reported', async () => {
    const lines = await trail(3)
    lines[1] = edit(lines[1]!, (entry) => (entry.severity = 'DEBUG'))
    const result = await verifyAuditTrail(lines)
    assert.equal(result.ok, false)
    assert.match(result.problems[0]!, /seq 2: severity DEBUG does not match outcome/)
  })

  test('reordered lines are reported; the links still verify', async () => {
    const lines = await trail(10)
    const moved = lines[3]!
    lines[3] = lines[6]!
    lines[6] = moved
    const result = await verifyAuditTrail(lines)
    assert.deepEqual(
      result.problems.map((problem) => problem.replace(/chain \S+ /, '')),
      ['line 5: seq 5 comes after seq 7 (out of order)', 'line 6: seq 6 comes after seq 7 (out of order)', 'line 7: seq 4 comes after seq 7 (out of order)'],
    )
    assert.equal((await verifyAuditTrail(lines, { ordered: false })).ok, true)
    assert.equal((await verifyAuditTrail([...lines].reverse(), { ordered: false })).ok, true)
  })

  test('a repeated line is a duplicate seq; a forged one with the same seq too', async () => {
    const lines = await trail(5)
    const repeated = await verifyAuditTrail([...lines, lines[2]!])
    assert.equal(repeated.problems.length, 1)
    assert.match(repeated.problems[0]!, /^line 6: chain \S+ seq 3 appears again, an identical copy \(first at line 3\)/)
    const forged = await verifyAuditTrail([...lines, edit(lines[2]!, (entry) => (entry.alias = 'other'))])
    assert.match(forged.problems[0]!, /seq 3 appears again, with different content/)
  })

  test('interleaved chains each verify; a gap in one is reported against it', async () => {
    const lines = await trail(30, 3)
    const chains = [...new Set(lines.map((line) => JSON.parse(line).chain as string))]
    assert.equal(chains.length, 3)
    assert.deepEqual(await verifyAuditTrail(lines), { ok: true, chains: 3, entries: 30, skipped: 0, checkpoints: 0, signaturesChecked: false, problems: [] })
    const victim = lines.findIndex((line) => JSON.parse(line).chain === chains[1] && seqOf(line) === 4)
    lines.splice(victim, 1)
    const result = await verifyAuditTrail(lines)
    assert.deepEqual(
      result.problems.map((problem) => problem.replace(/ \(.*\)$/, '')),
      [`chain ${chains[1]}: seq 4 is missing`],
    )
  })

  test('reads entries exported from Cloud Logging after Cloud Run ingested stdout (time moved into timestamp)', async () => {
    const exported = (await trail(10, 2)).map(asCloudRunExport)
    assert.ok(!('time' in JSON.parse(exported[0]!).jsonPayload))
    assert.deepEqual(await verifyAuditTrail(exported), { ok: true, chains: 2, entries: 10, skipped: 0, checkpoints: 0, signaturesChecked: false, problems: [] })
    exported[4] = edit(exported[4]!, (entry) => (entry.timestamp = '2001-01-01T00:00:00.000000000Z'))
    assert.match((await verifyAuditTrail(exported)).problems[0]!, /^line 5: .* hash mismatch/)
  })

  test('malformed audit fields are reported', async () => {
    const lines = await trail(2)
    const result = await verifyAuditTrail([...lines, edit(lines[1]!, (entry) => (entry.seq = 'three')), edit(lines[1]!, (entry) => (entry.hash = 'x'))])
    assert.equal(result.problems.length, 2)
    assert.match(result.problems[0]!, /^line 3: malformed audit entry \(chain \S+: seq "three"\)/)
    assert.match(result.problems[1]!, /^line 4: malformed audit entry/)
  })

  test('the first entry links to the genesis hash', async () => {
    const [first] = await trail(1)
    const entry = JSON.parse(first!)
    assert.equal(entry.hash, chainHash(GENESIS_HASH, hashedFields(entry)))
  })
})

describe('runAuditVerify (keywrap audit verify)', () => {
  async function capture(args: string[]) {
    let stdout = ''
    let stderr = ''
    const code = await runAuditVerify(args, { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } })
    return { code, stdout, stderr }
  }
  async function file(name: string, content: string): Promise<string> {
    const path = join(await mkdtemp(join(tmpdir(), 'keywrap-verify-')), name)
    await writeFile(path, content)
    return path
  }

  test('exit 0 on an intact trail, with a summary', async () => {
    const path = await file('audit.jsonl', `${(await trail(6, 2)).join('\n')}\n{"severity":"INFO"}\n`)
    const { code, stdout } = await capture([path])
    assert.equal(code, 0)
    assert.equal(stdout, `${path}: intact (2 chains, 6 entries, 1 other lines skipped)\n`)
  })

  test('exit 1 with each problem on its own line', async () => {
    const lines = await trail(6)
    lines.splice(2, 1)
    lines[3] = edit(lines[3]!, (entry) => (entry.alias = 'other'))
    const { code, stdout } = await capture([await file('audit.jsonl', lines.join('\n'))])
    assert.equal(code, 1)
    const output = stdout.trim().split('\n')
    assert.equal(output.length, 3)
    assert.match(output[0]!, /hash mismatch/)
    assert.match(output[1]!, /seq 3 is missing/)
    assert.match(output[2]!, /: 2 problems \(1 chain, 5 entries/)
  })

  test('reads the JSON array that gcloud logging read --format=json prints; --unordered for its newest-first order', async () => {
    const exported = (await trail(8)).map(asCloudRunExport).map((line) => JSON.parse(line))
    const path = await file('export.json', JSON.stringify(exported.reverse(), null, 2))
    assert.equal((await capture([path])).code, 1)
    const { code, stdout } = await capture(['--unordered', path])
    assert.equal(code, 0, stdout)
  })

  test('exit 66 for a file that cannot be read, 64 for wrong arguments', async () => {
    const missing = await capture(['/nonexistent/audit.jsonl'])
    assert.equal(missing.code, 66)
    assert.match(missing.stderr, /cannot read \/nonexistent\/audit.jsonl \(ENOENT\)/)
    for (const args of [[], ['a', 'b'], ['--bogus', 'a']]) {
      const wrong = await capture(args)
      assert.equal(wrong.code, 64, args.join(' '))
      assert.match(wrong.stderr, /^keywrap audit verify: .*\n\nusage: keywrap audit verify/)
    }
    assert.equal((await capture(['--help'])).code, 0)
  })
})
