/** The audit sink named by KEYWRAP_AUDIT_SINK: `stdout` (default), `file:PATH` or `cloud-logging`. */
import type { Metrics } from '../metrics/metrics.js'
import type { AuditSink } from './audit-sink.js'
import type { CheckpointTarget } from './checkpointer.js'
import type { AuditSinkSetting } from '../config/audit-sink-setting.js'
import type { MonitoredResource } from './cloud-logging-sink.js'
import { FileAuditSink } from './file-sink.js'
import { StdoutAuditSink, type LineStream } from './stdout-sink.js'

export { AUDIT_SINK_KINDS, parseAuditSinkSetting, type AuditSinkSetting } from '../config/audit-sink-setting.js'

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
  /** For stdout: the entries of one event-loop turn in one write (see turn-window.ts); default false. */
  batchWithinTurn?: boolean
  /** For cloud-logging; default `global`. */
  resource?: MonitoredResource
  /** For cloud-logging; default 5. */
  batchWindowMs?: number
}

/**
 * The Logging API client (and google-gax under it: ~40 MiB and ~300 ms at start) is loaded only when
 * the cloud-logging sink is chosen.
 */
export async function createAuditSink(setting: AuditSinkSetting, options: AuditSinkOptions): Promise<AuditSink & CheckpointTarget> {
  const { projectId, logName, writeTimeoutMs, metrics } = options
  switch (setting.kind) {
    case 'stdout':
      return new StdoutAuditSink({
        projectId,
        logName,
        writeTimeoutMs,
        metrics,
        ...(options.stdout && { stream: options.stdout }),
        ...(options.batchWithinTurn && { batchWithinTurn: true }),
      })
    case 'file':
      return new FileAuditSink({ path: setting.path, projectId, logName, writeTimeoutMs, metrics })
    case 'cloud-logging': {
      const { CloudLoggingAuditSink } = await import('./cloud-logging-sink.js')
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
}
