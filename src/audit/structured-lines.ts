/**
 * Audit entries as Cloud Logging structured JSON lines: what Cloud Run (stdout) and the Ops Agent
 * (files) turn into LogEntries. The special fields (severity, labels, insertId, trace, spanId,
 * operation, timestamp) become LogEntry metadata; the record itself, with its chain link, stays flat
 * in the payload.
 *
 * A line is exactly what @google-cloud/logging's LogSync writes for the entry (Entry.toStructuredJSON
 * with the payload flattened, plus logName; test/audit/structured-lines.test.ts holds the two equal),
 * but built as text around the record's canonical JSON, so that a record is serialised once, for its
 * hash and its line. Through the library the line cost three deep copies and a second serialisation,
 * about a tenth of the CPU of an L1-hit unwrap.
 */
import { AUDIT_LABELS, auditMessage, severityOf, type TrailEntry } from './audit-entry.js'
import type { SealedRecord } from './chain.js'
import { isCheckpointEntry } from './checkpoint.js'

// The library's names for LogEntry metadata in a structured line (its entry.js exports them).
const LABELS_KEY = 'logging.googleapis.com/labels'
const INSERT_ID_KEY = 'logging.googleapis.com/insertId'
const TRACE_KEY = 'logging.googleapis.com/trace'
const SPAN_ID_KEY = 'logging.googleapis.com/spanId'
const OPERATION_KEY = 'logging.googleapis.com/operation'

export const OPERATION_PRODUCER = 'keywrap'
const LABELS_JSON = JSON.stringify(AUDIT_LABELS)

export class StructuredLineFormatter {
  private readonly logNameJson: string

  constructor(options: { projectId: string; logName: string }) {
    this.logNameJson = JSON.stringify(`projects/${options.projectId}/logs/${encodeURIComponent(options.logName)}`)
  }

  /** The entry's line, newline included. */
  format(sealed: SealedRecord, entry: TrailEntry): string {
    const { seconds, nanos } = protoTimestamp(entry.time)
    const access = isCheckpointEntry(entry) ? undefined : entry
    let line = `{"severity":"${severityOf(entry)}","timestamp":{"seconds":${seconds},"nanos":${nanos}}`
    line += `,"${LABELS_KEY}":${LABELS_JSON},"${INSERT_ID_KEY}":${JSON.stringify(insertIdOf(sealed))}`
    // The library leaves out an empty trace or span id, as it does here.
    if (access?.trace) line += `,"${TRACE_KEY}":${JSON.stringify(access.trace)}`
    if (access?.spanId) line += `,"${SPAN_ID_KEY}":${JSON.stringify(access.spanId)}`
    // The record's members (never empty: chain and seq are always there), then the hash and summary.
    line += `,${sealed.fieldsJson.slice(1, -1)},"hash":"${sealed.hash}","message":${JSON.stringify(auditMessage(entry))}`
    // LogSync drops `operation` metadata, so the line carries the special field itself (a checkpoint belongs to no request).
    if (access) line += `,"${OPERATION_KEY}":{"id":${JSON.stringify(access.requestId)},"producer":"${OPERATION_PRODUCER}"}`
    line += `,"logName":${this.logNameJson}}\n`
    return line
  }
}

/** LogEntry metadata of an audit entry, for the Logging API sink (and the test that checks lines against the library). */
export function entryMetadata(sealed: SealedRecord, entry: TrailEntry) {
  const access = isCheckpointEntry(entry) ? undefined : entry
  return {
    severity: severityOf(entry),
    labels: { ...AUDIT_LABELS },
    insertId: insertIdOf(sealed),
    timestamp: protoTimestamp(entry.time),
    ...(access?.trace !== undefined && { trace: access.trace }),
    ...(access?.spanId !== undefined && { spanId: access.spanId }),
  }
}

/** Sorts like seq within a chain: Cloud Logging orders entries with equal timestamps by insertId. */
function insertIdOf(sealed: SealedRecord): string {
  return `${sealed.chain}-${String(sealed.seq).padStart(10, '0')}`
}

let lastTime: string | undefined
let lastTimestamp = { seconds: 0, nanos: 0 }

/**
 * Exact seconds and nanos: from a Date the library computes nanos in floating point (…326999902 for
 * .327). Entries come many to a millisecond under load, so the last answer is kept.
 */
function protoTimestamp(time: string): { seconds: number; nanos: number } {
  if (time === lastTime) return { ...lastTimestamp }
  const parsed = Date.parse(time)
  if (Number.isNaN(parsed)) return millisecondsToTimestamp(Date.now())
  lastTime = time
  lastTimestamp = millisecondsToTimestamp(parsed)
  return { ...lastTimestamp }
}

function millisecondsToTimestamp(milliseconds: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(milliseconds / 1000), nanos: (milliseconds % 1000) * 1_000_000 }
}

/** The payload: the hashed record, its hash and a summary. */
export function auditPayload(sealed: SealedRecord, entry: TrailEntry): Record<string, unknown> {
  return { ...sealed.fields, hash: sealed.hash, message: auditMessage(entry) }
}
