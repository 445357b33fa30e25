import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CloudLoggingAuditSink } from '../../src/audit/cloud-logging-sink.js'
import { createAuditSink, parseAuditSinkSetting } from '../../src/audit/create-audit-sink.js'
import { FileAuditSink } from '../../src/audit/file-sink.js'
import { parseEmulatorHost } from '../../src/support/emulator-host.js'
import { StdoutAuditSink } from '../../src/audit/stdout-sink.js'
import { LoggingStandIn } from '../support/logging-stand-in.js'
import { auditEntry, MemoryLineStream } from './audit-fixtures.js'

describe('parseAuditSinkSetting', () => {
  test('reads the three kinds; unset is stdout', () => {
    assert.deepEqual(parseAuditSinkSetting(undefined), { kind: 'stdout' })
    assert.deepEqual(parseAuditSinkSetting(''), { kind: 'stdout' })
    assert.deepEqual(parseAuditSinkSetting('stdout'), { kind: 'stdout' })
    assert.deepEqual(parseAuditSinkSetting('cloud-logging'), { kind: 'cloud-logging' })
    assert.deepEqual(parseAuditSinkSetting('file:/var/log/keywrap/audit.jsonl'), { kind: 'file', path: '/var/log/keywrap/audit.jsonl' })
    assert.deepEqual(parseAuditSinkSetting('file:audit.jsonl'), { kind: 'file', path: 'audit.jsonl' })
    assert.deepEqual(parseAuditSinkSetting('file:///var/log/audit.jsonl'), { kind: 'file', path: '/var/log/audit.jsonl' })
  })

  test('explains what is wrong', () => {
    assert.deepEqual(parseAuditSinkSetting('syslog'), { error: 'must be stdout, file:PATH or cloud-logging' })
    assert.deepEqual(parseAuditSinkSetting('file:'), { error: 'must name a file after "file:"' })
    assert.match((parseAuditSinkSetting('file://host/audit.jsonl') as { error: string }).error, /local file/)
  })
})

describe('createAuditSink', () => {
  const options = { projectId: 'test-project', logName: 'keywrap-audit' }

  test('stdout, on the stream given', async () => {
    const stream = new MemoryLineStream()
    const sink = await createAuditSink({ kind: 'stdout' }, { ...options, stdout: stream })
    assert.ok(sink instanceof StdoutAuditSink)
    await sink.write(auditEntry())
    assert.equal(stream.auditLines().length, 1)
    await sink.close()
  })

  test('file:PATH', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'keywrap-audit-')), 'audit.jsonl')
    const sink = await createAuditSink({ kind: 'file', path }, options)
    assert.ok(sink instanceof FileAuditSink)
    await sink.write(auditEntry())
    await sink.close()
    assert.match(await readFile(path, 'utf8'), /"seq":1/)
  })

  test('cloud-logging, to LOGGING_EMULATOR_HOST', async () => {
    const standIn = new LoggingStandIn()
    const running = await standIn.start()
    try {
      const sink = await createAuditSink({ kind: 'cloud-logging' }, { ...options, emulatorHost: running.address, writeTimeoutMs: 1000 })
      assert.ok(sink instanceof CloudLoggingAuditSink)
      await sink.write(auditEntry())
      await sink.close()
      assert.equal(standIn.entries.length, 1)
    } finally {
      await running.close()
    }
  })

  test('refuses a bad emulator host', async () => {
    await assert.rejects(
      createAuditSink({ kind: 'cloud-logging' }, { ...options, emulatorHost: 'localhost' }),
      /LOGGING_EMULATOR_HOST="localhost" must be HOST:PORT/,
    )
  })

  test('parseEmulatorHost reads host:port, [IPv6]:port and http://host:port', () => {
    assert.deepEqual(parseEmulatorHost('127.0.0.1:8085'), { host: '127.0.0.1', port: 8085 })
    assert.deepEqual(parseEmulatorHost('[::1]:8085'), { host: '::1', port: 8085 })
    assert.deepEqual(parseEmulatorHost('[::1]:9000'), { host: '::1', port: 9000 })
    assert.deepEqual(parseEmulatorHost('http://localhost:8085'), { host: 'localhost', port: 8085 })
    assert.deepEqual(parseEmulatorHost('kms_emulator:8085/'), { host: 'kms_emulator', port: 8085 })
    for (const bad of ['127.0.0.1:0', '127.0.0.1', ':8085', 'host:99999', '::1:8085']) assert.ok('error' in parseEmulatorHost(bad), bad)
  })
})
