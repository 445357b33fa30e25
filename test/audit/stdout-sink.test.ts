import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { AuditTimeoutError } from '../../src/audit/group-commit.js'
import { StdoutAuditSink } from '../../src/audit/stdout-sink.js'
import { verifyAuditTrail } from '../../src/cli/audit-verify.js'
import { Metrics } from '../../src/metrics/metrics.js'
import { auditEntry, MemoryLineStream, mixedEntry, PAYLOAD_FIELDS, parseAuditLines, range, seqsOf } from './audit-fixtures.js'

const warnings: Error[] = []
process.on('warning', (warning) => warnings.push(warning))

function sinkOn(stream: MemoryLineStream, options: { writeTimeoutMs?: number; metrics?: Metrics } = {}) {
  return new StdoutAuditSink({ projectId: 'test-project', logName: 'keywrap-audit', stream, ...options })
}

describe('StdoutAuditSink', () => {
  test('200 concurrent writes across outcomes: exactly one line each, seq 1..200 on one chain', async () => {
    const stream = new MemoryLineStream()
    const sink = sinkOn(stream)
    await Promise.all(range(0, 199).map((index) => sink.write(mixedEntry(index))))
    const lines = stream.auditLines()
    assert.equal(lines.length, 200)
    assert.deepEqual(
      lines.map((line) => line.requestId).sort(),
      range(0, 199)
        .map((index) => `request-${index}`)
        .sort(),
    )
    const chains = new Set(lines.map((line) => line.chain))
    assert.equal(chains.size, 1)
    assert.deepEqual(seqsOf(lines, sink.chainId), range(1, 200))
    assert.equal(new Set(lines.map((line) => line['logging.googleapis.com/insertId'])).size, 200)
    const verification = await verifyAuditTrail(stream.lines.join('').split('\n'))
    assert.deepEqual(verification.problems, [])
    assert.equal(verification.entries, 200)
    await sink.close()
  })

  test('a line has the Cloud Logging structured shape and the record, flat', async () => {
    const stream = new MemoryLineStream()
    const sink = sinkOn(stream)
    const entry = auditEntry({ outcome: 'allowed' })
    await sink.write(entry)
    await sink.write(auditEntry({ outcome: 'denied', errorCode: 'forbidden', cacheLevel: undefined, keyVersion: undefined }))
    await sink.write(auditEntry({ outcome: 'failed', errorCode: 'cannot_unwrap', batchIndex: 4 }))
    const [allowed, denied, failed] = stream.auditLines()
    assert.deepEqual([allowed!.severity, denied!.severity, failed!.severity], ['NOTICE', 'WARNING', 'ERROR'])
    assert.deepEqual(allowed!['logging.googleapis.com/labels'], { audit: 'true' })
    assert.equal(allowed!['logging.googleapis.com/trace'], entry.trace)
    assert.equal(allowed!['logging.googleapis.com/spanId'], entry.spanId)
    assert.deepEqual(allowed!['logging.googleapis.com/operation'], { id: 'request-1', producer: 'keywrap' })
    assert.match(allowed!['logging.googleapis.com/insertId'], new RegExp(`^${allowed!.chain}-0000000001$`))
    assert.equal(allowed!.logName, 'projects/test-project/logs/keywrap-audit')
    assert.equal(allowed!.message, 'audit unwrap default allowed')
    assert.equal(denied!.message, 'audit unwrap default denied forbidden')
    for (const field of PAYLOAD_FIELDS) {
      assert.deepEqual(allowed![field], entry[field], field)
    }
    assert.equal(failed!.batchIndex, 4)
    assert.ok(!('keyVersion' in denied!) && !('errorCode' in allowed!), 'undefined fields are left out')
    assert.deepEqual([allowed!.seq, denied!.seq, failed!.seq], [1, 2, 3])
    assert.match(allowed!.hash, /^[0-9a-f]{64}$/)
    const timestamp = allowed!.timestamp as { seconds: number; nanos: number }
    assert.equal(Math.round(timestamp.seconds * 1000 + timestamp.nanos / 1e6), Date.parse(allowed!.time), 'the LogEntry timestamp is the entry time')
    await sink.close()
  })

  test('a failed line rejects its write; the next entries start a new chain, so the trail has no hole', async () => {
    const stream = new MemoryLineStream()
    const sink = sinkOn(stream)
    await Promise.all(range(0, 9).map((index) => sink.write(mixedEntry(index))))
    const firstChain = sink.chainId
    stream.failing = new Error('EPIPE (test)')
    await assert.rejects(sink.write(mixedEntry(10)), /EPIPE/)
    stream.failing = undefined
    await Promise.all(range(11, 20).map((index) => sink.write(mixedEntry(index))))
    assert.notEqual(sink.chainId, firstChain)
    const lines = stream.auditLines()
    assert.deepEqual(seqsOf(lines, firstChain), range(1, 10))
    assert.deepEqual(seqsOf(lines, sink.chainId), range(1, 10))
    assert.ok(!lines.some((line) => line.requestId === 'request-10'))
    const verification = await verifyAuditTrail(stream.lines.join('').split('\n'))
    assert.deepEqual(verification.problems, [])
    assert.equal(verification.chains, 2)
    await sink.close()
  })

  test('an entry that cannot be formatted fails alone and takes no seq', async () => {
    const stream = new MemoryLineStream()
    const sink = sinkOn(stream)
    const unformattable = auditEntry({ requestId: 'bad', context: { size: 1n } as unknown as Record<string, string> })
    const results = await Promise.allSettled([sink.write(mixedEntry(1)), sink.write(unformattable), sink.write(mixedEntry(2))])
    assert.deepEqual(
      results.map((result) => result.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    )
    assert.deepEqual(
      stream.auditLines().map((line) => [line.requestId, line.seq]),
      [
        ['request-1', 1],
        ['request-2', 2],
      ],
    )
    await sink.close()
  })

  test('errors of a real Writable are detected', async () => {
    const stream = new Writable({ write: (_chunk, _encoding, callback) => callback(new Error('EIO (test)')) })
    stream.on('error', () => {})
    const sink = new StdoutAuditSink({ projectId: 'p', logName: 'keywrap-audit', stream })
    await assert.rejects(sink.write(auditEntry()), /EIO/)
    await sink.close()
  })

  test('a stream that does not call back rejects the write within writeTimeoutMs, and later writes go through', async () => {
    const stream = new MemoryLineStream()
    const sink = sinkOn(stream, { writeTimeoutMs: 100 })
    stream.holding = true
    const started = performance.now()
    await assert.rejects(sink.write(auditEntry()), AuditTimeoutError)
    const elapsed = performance.now() - started
    assert.ok(elapsed >= 95 && elapsed < 600, `took ${elapsed} ms`)
    const after = sink.write(auditEntry({ requestId: 'after' }))
    stream.release()
    await after
    const lines = stream.auditLines()
    assert.equal(lines.at(-1)?.requestId, 'after')
    assert.equal(lines.at(-1)?.seq, 1, 'a new chain after the abandoned write')
    assert.equal(lines.at(-1)?.chain, sink.chainId)
    assert.deepEqual((await verifyAuditTrail(stream.lines.join('').split('\n'))).problems, [], 'the late line ends its own chain')
    await sink.close()
  })

  test('writes made at different times each time out at their own deadline, not at the first one’s', { timeout: 10_000 }, async () => {
    const stream = new MemoryLineStream()
    const sink = sinkOn(stream, { writeTimeoutMs: 200 })
    stream.holding = true
    const started = performance.now()
    const settledAt = (write: Promise<void>) =>
      write.then(
        () => assert.fail('the write should have timed out'),
        (error: unknown) => {
          assert.ok(error instanceof AuditTimeoutError)
          return performance.now() - started
        },
      )
    const first = settledAt(sink.write(auditEntry({ requestId: 'first' })))
    await sleep(120)
    const second = settledAt(sink.write(auditEntry({ requestId: 'second' })))
    const [firstMs, secondMs] = await Promise.all([first, second])
    // Lower bounds are exact (a write never times out early); upper ones leave room for a loaded machine.
    assert.ok(firstMs >= 195 && firstMs < 2000, `first timed out after ${firstMs} ms`)
    assert.ok(secondMs >= 315 && secondMs < 3000, `second timed out after ${secondMs} ms`)
    stream.release()
    await sink.close()
  })

  test('writes overdue together are all refused, and none is sealed into a batch that is then abandoned', { timeout: 10_000 }, async () => {
    const stream = new MemoryLineStream()
    const sink = sinkOn(stream, { writeTimeoutMs: 100 })
    stream.holding = true
    // The first goes out at once (and is held); the other two queue behind it.
    const writes = ['first', 'second', 'third'].map((requestId) => sink.write(auditEntry({ requestId })))
    // The event loop is blocked past every deadline, so the timer finds all three overdue at once.
    const until = performance.now() + 250
    while (performance.now() < until);
    const results = await Promise.allSettled(writes)
    assert.ok(results.every((result) => result.status === 'rejected' && result.reason instanceof AuditTimeoutError))
    stream.release()
    await sink.write(auditEntry({ requestId: 'after' }))
    // The first was in flight, so its line may land; the two refused while queued were never written.
    assert.deepEqual(
      stream.auditLines().map((line) => line.requestId),
      ['first', 'after'],
    )
    assert.equal(stream.auditLines().at(-1)?.seq, 1, 'a new chain after the abandoned batch')
    await sink.close()
  })

  test('close() writes what is pending; writes after it reject', async () => {
    const stream = new MemoryLineStream()
    stream.delayMs = 30
    const sink = sinkOn(stream)
    const pending = range(0, 4).map((index) => sink.write(mixedEntry(index)))
    await sink.close()
    assert.equal(stream.auditLines().length, 5)
    await Promise.all(pending)
    await assert.rejects(sink.write(auditEntry()), /closed/)
  })

  test('counts writes and failures in the metrics', async () => {
    const metrics = new Metrics()
    const stream = new MemoryLineStream()
    const sink = sinkOn(stream, { metrics })
    await Promise.all(range(0, 2).map((index) => sink.write(mixedEntry(index))))
    stream.failing = new Error('EPIPE (test)')
    await assert.rejects(sink.write(auditEntry()))
    const text = await metrics.registry.metrics()
    assert.match(text, /keywrap_audit_write_seconds_count\{sink="stdout"\} 3/)
    assert.match(text, /keywrap_audit_failures_total\{sink="stdout"\} 1/)
    await sink.close()
  })

  test('builds as src/compose.ts builds it, without looking for Google credentials', async () => {
    const sink = new StdoutAuditSink({ projectId: 'keywrap-local', logName: 'keywrap-audit' })
    await sink.close()
    await sleep(200)
    assert.deepEqual(
      warnings.filter((warning) => warning.name === 'MetadataLookupWarning'),
      [],
    )
  })

  test('batchWithinTurn: the entries of an event-loop turn go out together at its end, each resolved once written', async () => {
    // Like a pipe on Linux: written at once, the callback on the next tick.
    const writes: string[] = []
    const pipe = { write: (chunk: string, callback: (error?: Error | null) => void) => (writes.push(chunk), process.nextTick(callback), true) }
    // Five calls handled in callbacks of their own within one turn, as gRPC and HTTP hand requests over.
    const inSeparateCallbacks = (sink: StdoutAuditSink) =>
      Promise.all(range(0, 4).map((index) => new Promise<void>((resolve, reject) => setImmediate(() => sink.write(mixedEntry(index)).then(resolve, reject)))))

    const alone = new StdoutAuditSink({ projectId: 'test-project', logName: 'keywrap-audit', stream: pipe })
    await inSeparateCallbacks(alone)
    assert.equal(writes.length, 5, 'without it, each entry is a write of its own')

    writes.length = 0
    const grouped = new StdoutAuditSink({ projectId: 'test-project', logName: 'keywrap-audit', stream: pipe, batchWithinTurn: true })
    await inSeparateCallbacks(grouped)
    assert.deepEqual(
      writes.map((chunk) => parseAuditLines(chunk).length),
      [5],
      'the whole turn in one write',
    )
    assert.deepEqual(seqsOf(parseAuditLines(writes.join('')), grouped.chainId), range(1, 5))
    assert.deepEqual((await verifyAuditTrail(writes.join('').split('\n'))).problems, [])

    // A lone entry (a call at a time) waits for the end of its turn only, not for a timer.
    writes.length = 0
    await new Promise((resolve) => setImmediate(resolve))
    const written = grouped.write(mixedEntry(5))
    assert.equal(writes.length, 0, 'not before its turn ends')
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(writes.length, 1, 'written when its turn ends')
    await written
    await Promise.all([alone.close(), grouped.close()])
  })

  test('parseAuditLines keeps only audit lines', () => {
    const text = '{"severity":"INFO","message":"request"}\n{"logging.googleapis.com/labels":{"audit":"true"},"seq":1}\n'
    assert.equal(parseAuditLines(text).length, 1)
  })
})
