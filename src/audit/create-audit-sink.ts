/** The audit sink named by KEYWRAP_AUDIT_SINK: `stdout` (default), `file:PATH` or `cloud-logging`. */
import type { Metrics } from '../metrics/metrics.js'
import type { AuditSink } from './audit-sink.js'
import { CloudLoggingAuditSink, type MonitoredResource } from './cloud-logging-sink.js'
import { FileAuditSink } from './file-sink.js'
import { StdoutAuditSink, type LineStream } from './stdout-sink.js'

export type AuditSinkSetting = { kind: 'stdout' } | { kind: 'file'; path: string } | { kind: 'cloud-logging' }

export const AUDIT_SINK_KINDS = 'stdout, file:PATH or cloud-logging'

/** For config validation; on error, the text completes `KEYWRAP_AUDIT_SINK="VALUE" …`. */
export function parseAuditSinkSetting(value: string | undefined): AuditSinkSetting | { error: string } {
  const text = value?.trim() ?? ''
  if (text === '' || text === 'stdout') return { kind: 'stdout' }
  if (text === 'cloud-logging') return { kind: 'cloud-logging' }
  if (text.startsWith('file:')) {
    // file:PATH, or the URL form file:///PATH
    const path = text.startsWith('file://') ? (text.startsWith('file:///') ? text.slice('file://'.length) : undefined) : text.slice('file:'.length)
    if (path === undefined) return { error: 'must name a local file: file:PATH or file:///PATH' }
    if (path === '' || path.includes('\0')) return { error: 'must name a file after "file:"' }
    return { kind: 'file', path }
  }
  return { error: `must be ${AUDIT_SINK_KINDS}` }
}

export interface AuditSinkOptions {
  projectId: string
  logName: string
  /** LOGGING_EMULATOR_HOST, for cloud-logging. */
  emulatorHost?: string
  /** Default 2000. */
  writeTimeoutMs?: number
  metrics?: Metrics
  /** For stdout; default process.stdout. */
  stdout?: LineStream
  /** For cloud-logging; default `global`. */
  resource?: MonitoredResource
  /** For cloud-logging; default 5. */
  batchWindowMs?: number
}

export function createAuditSink(setting: string, options: AuditSinkOptions): AuditSink {
  const parsed = parseAuditSinkSetting(setting)
  if ('error' in parsed) throw new Error(`KEYWRAP_AUDIT_SINK="${setting}" ${parsed.error}`)
  const { projectId, logName, writeTimeoutMs, metrics } = options
  switch (parsed.kind) {
    case 'stdout':
      return new StdoutAuditSink({ projectId, logName, writeTimeoutMs, metrics, ...(options.stdout && { stream: options.stdout }) })
    case 'file':
      return new FileAuditSink({ path: parsed.path, projectId, logName, writeTimeoutMs, metrics })
    case 'cloud-logging':
      return new CloudLoggingAuditSink({
        projectId,
        logName,
        writeTimeoutMs,
        metrics,
        ...(options.emulatorHost !== undefined && { emulatorHost: options.emulatorHost }),
        ...(options.resource && { resource: options.resource }),
        ...(options.batchWindowMs !== undefined && { batchWindowMs: options.batchWindowMs }),
      })
  }
}
