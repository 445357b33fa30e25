/**
 * Audit entries written to the Cloud Logging API (WriteLogEntries) under their own log name, not
 * through stdout: the write is acknowledged by Logging itself. Entries arriving within a short window
 * (default 5 ms, or 100 entries) go as one call, and each write resolves when the call holding its
 * entry is acknowledged. A batch is all or nothing (partialSuccess false) so that a chain never has a
 * hole. The client retries UNAVAILABLE and similar within the write timeout; insertIds keep retries
 * from duplicating entries.
 */
import { Entry, formatLogName, v2 } from '@google-cloud/logging'
import type { Metrics } from '../metrics/metrics.js'
import { AUDIT_LABELS, type TrailEntry } from './audit-entry.js'
import type { SealedRecord } from './chain.js'
import { isCheckpointEntry } from './checkpoint.js'
import { GroupCommitSink, type BatchWriter } from './group-commit.js'
import { loggingClientOptions } from './logging-client.js'
import { auditPayload, entryMetadata, OPERATION_PRODUCER } from './structured-lines.js'

export interface MonitoredResource {
  type: string
  labels?: Record<string, string>
}

export interface CloudLoggingAuditSinkOptions {
  projectId: string
  /** The log's id; entries go to `projects/PROJECT/logs/LOG_NAME`. */
  logName: string
  /** `HOST:PORT` of a plaintext Logging API (an emulator or test stand-in); unset: logging.googleapis.com with ADC. */
  emulatorHost?: string
  /** Default 2000. */
  writeTimeoutMs?: number
  /** Default 5. */
  batchWindowMs?: number
  /** Default 100. */
  maxBatchEntries?: number
  /** Default `global` in the project; e.g. `cloud_run_revision` with service_name, revision_name, location. */
  resource?: MonitoredResource
  metrics?: Metrics
}

/** The slice of LoggingServiceV2Client this sink uses (the package types its clients as any). */
interface LogEntriesWriter {
  writeLogEntries(request: Record<string, unknown>, options: { timeout: number }): Promise<unknown>
  close(): Promise<void>
}

type ApiEntry = ReturnType<Entry['toJSON']>

class LoggingApiWriter implements BatchWriter<ApiEntry> {
  private readonly client: LogEntriesWriter
  private readonly request: { logName: string; resource: MonitoredResource; labels: Record<string, string> }

  constructor(private readonly options: CloudLoggingAuditSinkOptions) {
    const { projectId, emulatorHost } = options
    this.client = new v2.LoggingServiceV2Client(loggingClientOptions({ projectId, ...(emulatorHost !== undefined && { emulatorHost }) }))
    this.request = {
      logName: formatLogName(projectId, options.logName),
      resource: options.resource ?? { type: 'global', labels: { project_id: projectId } },
      labels: { ...AUDIT_LABELS },
    }
  }

  format(sealed: SealedRecord, entry: TrailEntry): ApiEntry {
    const operation = isCheckpointEntry(entry) ? undefined : { id: entry.requestId, producer: OPERATION_PRODUCER }
    const metadata = { ...entryMetadata(sealed, entry), ...(operation && { operation }) }
    return new Entry(metadata, auditPayload(sealed, entry)).toJSON({}, this.options.projectId)
  }

  async commit(items: readonly ApiEntry[], timeoutMs: number): Promise<void> {
    await this.client.writeLogEntries({ ...this.request, entries: items, partialSuccess: false }, { timeout: timeoutMs })
  }

  async close(): Promise<void> {
    await this.client.close()
  }
}

export class CloudLoggingAuditSink extends GroupCommitSink<ApiEntry> {
  constructor(options: CloudLoggingAuditSinkOptions) {
    super(new LoggingApiWriter(options), {
      sink: 'cloud-logging',
      writeTimeoutMs: options.writeTimeoutMs,
      batchWindowMs: options.batchWindowMs ?? 5,
      maxBatchEntries: options.maxBatchEntries ?? 100,
      metrics: options.metrics,
    })
  }
}
