import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { status } from '@grpc/grpc-js'
import { setTimeout as sleep } from 'node:timers/promises'
import { CloudLoggingAuditSink, type CloudLoggingAuditSinkOptions } from '../../src/audit/cloud-logging-sink.js'
import { AuditTimeoutError } from '../../src/audit/group-commit.js'
import { verifyAuditTrail } from '../../src/cli/audit-verify.js'
import { LoggingStandIn, type RunningLoggingStandIn } from '../support/logging-stand-in.js'
import { auditEntry, mixedEntry, PAYLOAD_FIELDS, range } from './audit-fixtures.js'

const warnings: Error[] = []
process.on('warning', (warning) => warnings.push(warning))

describe('CloudLoggingAuditSink against the Logging stand-in', () => {
  const standIn = new LoggingStandIn()
  let running: RunningLoggingStandIn
  const sinks: CloudLoggingAuditSink[] = []

  const sink = (options: Partial<CloudLoggingAuditSinkOptions> = {}) => {
    const created = new CloudLoggingAuditSink({ projectId: 'test-project', logName: 'keywrap-audit', emulatorHost: running.address, ...options })
    sinks.push(created)
    return created
  }
  const audited = () => standIn.entries.filter((entry) => entry.labels.audit === 'true')

  before(async () => {
    running = await standIn.start()
  })
  beforeEach(() => standIn.reset())
  after(async () => {
    await Promise.all(sinks.map((created) => created.close()))
    await running.close()
  })

  test('writes each entry once, to its own log, with labels, severity, trace and operation', async () => {
    const audit = sink()
    const entries = range(0, 2).map(mixedEntry)
    await Promise.all(entries.map((entry) => audit.write(entry)))
    assert.equal(standIn.calls.length, 1)
    const [call] = standIn.calls
    assert.equal(call!.logName, 'projects/test-project/logs/keywrap-audit')
    assert.deepEqual(call!.labels, { audit: 'true' })
    assert.deepEqual(call!.resource, { type: 'global', labels: { project_id: 'test-project' } })
    assert.equal(call!.partialSuccess, false)
    const written = audited()
    assert.equal(written.length, 3)
    assert.deepEqual(
      written.map((entry) => entry.severity),
      ['NOTICE', 'WARNING', 'ERROR'],
    )
    assert.deepEqual(
      written.map((entry) => entry.jsonPayload?.seq),
      [1, 2, 3],
    )
    const [first] = written
    const entry = entries[0]!
    assert.equal(first!.logName, 'projects/test-project/logs/keywrap-audit')
    assert.equal(first!.trace, entry.trace)
    assert.equal(first!.spanId, entry.spanId)
    assert.deepEqual(first!.operation, { id: 'request-0', producer: 'keywrap' })
    assert.equal(first!.insertId, `${audit.chainId}-0000000001`)
    assert.equal(new Date(first!.timestamp).getTime(), Date.parse(entry.time))
    const payload = first!.jsonPayload!
    for (const field of PAYLOAD_FIELDS) {
      assert.deepEqual(payload[field], entry[field], field)
    }
    assert.equal(payload.chain, audit.chainId)
    assert.match(payload.hash as string, /^[0-9a-f]{64}$/)
    assert.equal(new Set(written.map((written) => written.insertId)).size, 3)
  })

  test('group commit: 50 concurrent writes go in fewer than 50 calls', async () => {
    const audit = sink()
    await Promise.all(range(0, 49).map((index) => audit.write(mixedEntry(index))))
    assert.ok(standIn.calls.length < 50, `${standIn.calls.length} calls`)
    assert.ok(standIn.calls.length <= 2, `${standIn.calls.length} calls`)
    assert.deepEqual(
      audited().map((entry) => entry.jsonPayload?.seq),
      range(1, 50),
    )
  })

  test('200 concurrent writes: 200 entries, seq 1..200, batches of at most 100', async () => {
    const audit = sink()
    await Promise.all(range(0, 199).map((index) => audit.write(mixedEntry(index))))
    assert.deepEqual(
      audited().map((entry) => entry.jsonPayload?.seq),
      range(1, 200),
    )
    assert.ok(standIn.calls.every((call) => call.entries.length <= 100))
    assert.ok(standIn.calls.length >= 2 && standIn.calls.length < 20, `${standIn.calls.length} calls`)
  })

  test('each write resolves only after the call holding its entry was acknowledged', async () => {
    standIn.faults = { latencyMs: 80 }
    const audit = sink()
    const resolvedAt = new Map<string, number>()
    await Promise.all(
      range(0, 49).map(async (index) => {
        if (index >= 25) await sleep(30)
        await audit.write(mixedEntry(index))
        resolvedAt.set(`request-${index}`, performance.now())
      }),
    )
    assert.ok(standIn.calls.length >= 2, 'entries arrived in two waves')
    for (const call of standIn.calls) {
      assert.equal(call.outcome, 'OK')
      for (const entry of call.entries) {
        const resolved = resolvedAt.get(entry.jsonPayload?.requestId as string)
        assert.ok(resolved !== undefined && resolved >= call.answeredAt!, `${entry.jsonPayload?.requestId} resolved before its call was answered`)
      }
    }
  })

  test('a failing Logging API (UNAVAILABLE) rejects the write within the timeout', async () => {
    standIn.faults = { failWith: status.UNAVAILABLE }
    const audit = sink({ writeTimeoutMs: 300 })
    const started = performance.now()
    await assert.rejects(audit.write(auditEntry()))
    const elapsed = performance.now() - started
    assert.ok(elapsed < 800, `took ${elapsed} ms`)
    assert.ok(standIn.calls.length >= 1)
    assert.equal(audited().length, 0)
  })

  test('a slow Logging API rejects within the timeout; the next writes start a new chain', async () => {
    standIn.faults = { latencyMs: 2000 }
    const audit = sink({ writeTimeoutMs: 200 })
    const abandonedChain = audit.chainId
    const started = performance.now()
    const results = await Promise.allSettled(range(0, 4).map((index) => audit.write(mixedEntry(index))))
    const elapsed = performance.now() - started
    assert.ok(results.every((result) => result.status === 'rejected' && result.reason instanceof AuditTimeoutError))
    assert.ok(elapsed >= 190 && elapsed < 700, `took ${elapsed} ms`)
    standIn.faults = {}
    await audit.write(auditEntry({ requestId: 'after' }))
    assert.notEqual(audit.chainId, abandonedChain)
    const [landed] = audited()
    assert.deepEqual([landed?.jsonPayload?.requestId, landed?.jsonPayload?.seq], ['after', 1])
  })

  test('a transient UNAVAILABLE is retried within the timeout and the entry lands once', async () => {
    standIn.faults = { failWith: status.UNAVAILABLE, failCalls: 1 }
    const audit = sink({ writeTimeoutMs: 2000 })
    await audit.write(auditEntry({ requestId: 'retried' }))
    assert.equal(standIn.calls.length, 2)
    assert.deepEqual(
      audited().map((entry) => entry.jsonPayload?.requestId),
      ['retried'],
    )
  })

  test('close() sends what is waiting in the batch window', async () => {
    const audit = new CloudLoggingAuditSink({ projectId: 'test-project', logName: 'keywrap-audit', emulatorHost: running.address, batchWindowMs: 10_000 })
    const pending = range(0, 9).map((index) => audit.write(mixedEntry(index)))
    await audit.close()
    await Promise.all(pending)
    assert.equal(audited().length, 10)
  })

  test('what Cloud Logging exports from the sink verifies, across chains', async () => {
    const first = sink()
    const second = sink()
    await Promise.all(range(0, 99).map((index) => (index % 3 === 0 ? second : first).write(mixedEntry(index))))
    const verification = await verifyAuditTrail(standIn.exportLines())
    assert.deepEqual(verification.problems, [])
    assert.deepEqual([verification.chains, verification.entries], [2, 100])
  })

  test('no credentials or metadata server were looked for', async () => {
    await sleep(100)
    assert.deepEqual(
      warnings.filter((warning) => warning.name === 'MetadataLookupWarning'),
      [],
    )
  })
})
