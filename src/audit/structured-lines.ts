/**
 * Audit entries as Cloud Logging structured JSON lines, formatted by @google-cloud/logging's LogSync:
 * what Cloud Run (stdout) and the Ops Agent (files) turn into LogEntries. The special fields
 * (severity, labels, insertId, trace, spanId, operation, timestamp) become LogEntry metadata; the
 * record itself, with its chain link, stays flat in the payload.
 */
// The Entry class alone: the package's index loads every API client (google-gax), ~40 MiB and ~300 ms
// of start-up that formatting lines does not need.
import { Entry } from '@google-cloud/logging/build/src/entry.js'
import { AUDIT_LABELS, AUDIT_SEVERITY, auditMessage, type AuditEntry } from './audit-entry.js'
import type { SealedRecord } from './chain.js'

export class StructuredLineFormatter {
  private readonly projectId: string
  private readonly logName: string

  constructor(options: { projectId: string; logName: string }) {
    this.projectId = options.projectId
    this.logName = `projects/${options.projectId}/logs/${encodeURIComponent(options.logName)}`
  }

  /**
   * The entry's line, in the structured form LogSync writes (Entry.toStructuredJSON plus the log
   * name). Formatted here rather than through LogSync.write, which swallows errors and repeats
   * per-write work (log name, instrumentation) that is the same for every entry.
   */
  format(sealed: SealedRecord, entry: AuditEntry): string[] {
    const structured = new Entry(entryMetadata(sealed, entry), linePayload(sealed, entry)).toStructuredJSON(this.projectId, false)
    return [`${JSON.stringify({ ...structured, logName: this.logName })}\n`]
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
