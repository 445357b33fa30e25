/**
 * Audit entries as Cloud Logging structured JSON lines, formatted by @google-cloud/logging's LogSync:
 * what Cloud Run (stdout) and the Ops Agent (files) turn into LogEntries. The special fields
 * (severity, labels, insertId, trace, spanId, operation, timestamp) become LogEntry metadata; the
 * record itself, with its chain link, stays flat in the payload.
 */
import type { Writable } from 'node:stream'
import { Logging, type LogSync } from '@google-cloud/logging'
// The library adds a diagnostic entry (its own version) to the first write of each process; in an
// audit trail that is one line more than there were key accesses, so it is marked as already sent.
import { setInstrumentationStatus } from '@google-cloud/logging/build/src/utils/instrumentation.js'
import { AUDIT_LABELS, AUDIT_SEVERITY, auditMessage, type AuditEntry } from './audit-entry.js'
import type { SealedRecord } from './chain.js'
import { loggingClientOptions } from './logging-client.js'

/** Keeps what LogSync writes instead of writing it, so that the caller decides how and learns whether it was written. */
class LineCapture {
  private lines: string[] = []

  write(line: string): boolean {
    this.lines.push(line)
    return true
  }

  take(): string[] {
    const lines = this.lines
    this.lines = []
    return lines
  }
}

export class StructuredLineFormatter {
  private readonly capture = new LineCapture()
  private readonly log: LogSync

  constructor(options: { projectId: string; logName: string }) {
    setInstrumentationStatus(true)
    const logging = new Logging(loggingClientOptions({ projectId: options.projectId, offline: true }))
    this.log = logging.logSync(options.logName, this.capture as unknown as Writable, { useMessageField: false })
  }

  /** The entry's line. LogSync swallows formatting errors, so no line means the entry cannot be written. */
  format(sealed: SealedRecord, entry: AuditEntry): string[] {
    this.capture.take()
    this.log.write(this.log.entry(entryMetadata(sealed, entry), linePayload(sealed, entry)))
    const lines = this.capture.take()
    if (lines.length === 0) throw new Error('The audit entry could not be formatted.')
    return lines
  }
}

/** LogEntry metadata of an audit entry, shared by the line sinks and the Logging API sink. */
export function entryMetadata(sealed: SealedRecord, entry: AuditEntry) {
  return {
    severity: AUDIT_SEVERITY[entry.outcome],
    labels: { ...AUDIT_LABELS },
    // Sorts like seq within a chain: Cloud Logging orders entries with equal timestamps by insertId.
    insertId: `${sealed.chain}-${String(sealed.seq).padStart(10, '0')}`,
    timestamp: protoTimestamp(entry.time),
    ...(entry.trace !== undefined && { trace: entry.trace }),
    ...(entry.spanId !== undefined && { spanId: entry.spanId }),
  }
}

/** Exact seconds and nanos: from a Date the library computes nanos in floating point (…326999902 for .327). */
function protoTimestamp(time: string): { seconds: number; nanos: number } {
  const parsed = Date.parse(time)
  const milliseconds = Number.isNaN(parsed) ? Date.now() : parsed
  return { seconds: Math.floor(milliseconds / 1000), nanos: (milliseconds % 1000) * 1_000_000 }
}

export const OPERATION_PRODUCER = 'keywrap'

/** The payload: the hashed record, its hash and a summary. */
export function auditPayload(sealed: SealedRecord, entry: AuditEntry): Record<string, unknown> {
  return { ...sealed.fields, hash: sealed.hash, message: auditMessage(entry) }
}

function linePayload(sealed: SealedRecord, entry: AuditEntry): Record<string, unknown> {
  // LogSync drops `operation` metadata, so the line carries the special field itself.
  return { ...auditPayload(sealed, entry), 'logging.googleapis.com/operation': { id: entry.requestId, producer: OPERATION_PRODUCER } }
}
