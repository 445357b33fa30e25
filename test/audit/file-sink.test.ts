import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFile, mkdir, mkdtemp, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileAuditSink } from '../../src/audit/file-sink.js'
import { verifyAuditTrail } from '../../src/cli/audit-verify.js'
import { auditEntry, mixedEntry, parseAuditLines, range, seqsOf } from './audit-fixtures.js'

async function temporaryFile(name = 'audit.jsonl'): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), 'keywrap-audit-')), name)
}

function fileSink(path: string, writeTimeoutMs?: number) {
  return new FileAuditSink({ path, projectId: 'test-project', logName: 'keywrap-audit', ...(writeTimeoutMs && { writeTimeoutMs }) })
}

describe('FileAuditSink', () => {
  test('200 concurrent writes: 200 JSON lines appended, seq 1..200, a trail that verifies', async () => {
    const path = await temporaryFile()
    await appendFile(path, '{"severity":"INFO","message":"already here"}\n')
    const sink = fileSink(path)
    await Promise.all(range(0, 199).map((index) => sink.write(mixedEntry(index))))
    await sink.close()
    const text = await readFile(path, 'utf8')
    assert.ok(text.startsWith('{"severity":"INFO","message":"already here"}\n'), 'appends, never truncates')
    assert.ok(text.endsWith('\n'))
    const lines = parseAuditLines(text)
    assert.equal(lines.length, 200)
    assert.deepEqual(seqsOf(lines, sink.chainId), range(1, 200))
    const verification = await verifyAuditTrail(text.split('\n'))
    assert.deepEqual(verification.problems, [])
    assert.deepEqual([verification.chains, verification.entries], [1, 200])
  })

  test('creates the file owner-only', async () => {
    const path = await temporaryFile()
    const sink = fileSink(path)
    await sink.write(auditEntry())
    await sink.close()
    assert.equal((await stat(path)).mode & 0o777, 0o600)
  })

  test('on /dev/full the write rejects, and quickly', async () => {
    const sink = fileSink('/dev/full')
    const started = performance.now()
    await assert.rejects(sink.write(auditEntry()), { code: 'ENOSPC' })
    assert.ok(performance.now() - started < 500)
    await assert.rejects(Promise.all(range(0, 9).map((index) => sink.write(mixedEntry(index)))), { code: 'ENOSPC' })
    await sink.close()
  })

  test('after a failure the sink reopens the file and starts a new chain', async () => {
    const directory = join(await mkdtemp(join(tmpdir(), 'keywrap-audit-')), 'later')
    const path = join(directory, 'audit.jsonl')
    const sink = fileSink(path)
    const lostChain = sink.chainId
    await assert.rejects(sink.write(auditEntry({ requestId: 'lost' })), { code: 'ENOENT' })
    await mkdir(directory)
    await sink.write(auditEntry({ requestId: 'kept' }))
    await sink.close()
    assert.notEqual(sink.chainId, lostChain)
    const text = await readFile(path, 'utf8')
    const lines = parseAuditLines(text)
    assert.deepEqual(
      lines.map((line) => [line.requestId, line.seq]),
      [['kept', 1]],
    )
    assert.deepEqual((await verifyAuditTrail(text.split('\n'))).problems, [])
  })

  test('two sinks (two processes) on one file: interleaved chains, each intact', async () => {
    const path = await temporaryFile()
    const first = fileSink(path)
    const second = fileSink(path)
    await Promise.all(range(0, 199).map((index) => (index % 2 === 0 ? first : second).write(mixedEntry(index))))
    await Promise.all([first.close(), second.close()])
    const text = await readFile(path, 'utf8')
    const lines = parseAuditLines(text)
    assert.deepEqual(seqsOf(lines, first.chainId), range(1, 100))
    assert.deepEqual(seqsOf(lines, second.chainId), range(1, 100))
    const verification = await verifyAuditTrail(text.split('\n'))
    assert.deepEqual(verification.problems, [])
    assert.equal(verification.chains, 2)
  })
})
