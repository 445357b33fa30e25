/**
 * Tamper evidence for the audit trail. Each sink instance writes one hash chain at a time: every entry
 * carries `chain` (a random id), `seq` (1, 2, …) and
 *
 *   hash = hex(SHA-256(previous hash as 32 bytes ‖ UTF-8 canonical JSON of the record))
 *
 * where the record is the entry's fields plus `chain` and `seq` (not `hash`), and the first entry's
 * previous hash is GENESIS_HASH. Canonical JSON: object keys sorted, no whitespace, undefined omitted.
 *
 * A deleted, edited or reordered entry then shows as a gap, a hash mismatch or a seq out of order
 * (`keywrap audit verify`). Whoever can rewrite the whole trail can recompute every hash, so the chain
 * complements a locked log bucket rather than replacing it; and on its own the end of a chain looks
 * the same whether it was cut or the process stopped: the signed checkpoints of checkpoint.ts tell.
 *
 * A sink starts a new chain when a write fails (see group-commit.ts), so that a chain never has a hole
 * where an entry could not be written.
 */
import { hash, randomBytes } from 'node:crypto'
import { canonicalJson } from './canonical-json.js'
import type { AuditEntry, TrailEntry } from './audit-entry.js'
import { checkpointRecord, isCheckpointEntry } from './checkpoint.js'

export const GENESIS_HASH = '0'.repeat(64)

/**
 * Fields of a written entry that are presentation, not record, and so outside the hash: the hash
 * itself, the summary line, and what log agents turn into LogEntry metadata and strip from the payload.
 */
const UNHASHED_FIELDS = new Set(['hash', 'message', 'severity', 'logName', 'timestamp', 'resource', 'httpRequest'])
const LOG_AGENT_PREFIX = 'logging.googleapis.com/'

export type AuditRecord = Readonly<Record<string, unknown>>

export interface SealedRecord {
  readonly chain: string
  readonly seq: number
  readonly hash: string
  /** The entry's fields with `chain` and `seq`: what `hash` covers. */
  readonly fields: AuditRecord
  /** canonicalJson(fields): the bytes hashed, which line sinks also write (one serialisation per entry). */
  readonly fieldsJson: string
}

export class AuditChain {
  readonly id: string
  private seq = 0
  private last = GENESIS_HASH

  constructor(id: string = randomBytes(9).toString('base64url')) {
    this.id = id
  }

  /** Number of entries accepted so far. */
  get length(): number {
    return this.seq
  }

  /** The next link for `record`; the chain does not move until accept(). */
  seal(record: AuditRecord): SealedRecord {
    const seq = this.seq + 1
    const fields = withChainLink(record, this.id, seq)
    const fieldsJson = canonicalJson(fields)
    return { chain: this.id, seq, hash: hashLink(this.last, fieldsJson), fields, fieldsJson }
  }

  accept(sealed: SealedRecord): void {
    if (sealed.chain !== this.id || sealed.seq !== this.seq + 1) throw new Error(`Audit chain ${this.id}: seq ${sealed.seq} does not follow ${this.seq}.`)
    this.seq = sealed.seq
    this.last = sealed.hash
  }
}

export function chainHash(previous: string, fields: AuditRecord): string {
  return hashLink(previous, canonicalJson(fields))
}

function hashLink(previous: string, fieldsJson: string): string {
  return hash('sha256', Buffer.concat([Buffer.from(previous, 'hex'), Buffer.from(fieldsJson, 'utf8')]), 'hex')
}

/** Every field of an audit entry (the type checks that none is missing), in canonical (sorted) order. */
const ENTRY_FIELDS = Object.keys({
  time: true,
  operation: true,
  principal: true,
  issuer: true,
  alias: true,
  keyVersion: true,
  sourceKeyVersion: true,
  outcome: true,
  errorCode: true,
  cacheLevel: true,
  context: true,
  wrappedKeyFingerprint: true,
  rewrappedKeyFingerprint: true,
  batchIndex: true,
  batchSize: true,
  reason: true,
  callerReason: true,
  unrecorded: true,
  requestId: true,
  clientRequestId: true,
  trace: true,
  spanId: true,
  remoteAddress: true,
  peerAddress: true,
  userAgent: true,
  latencyMs: true,
} satisfies Record<keyof AuditEntry, true>).sort() as (keyof AuditEntry)[]

/**
 * The entry's defined fields, built in canonical order (the context's keys sorted too), so that
 * canonicalJson() of the sealed record is a plain JSON.stringify.
 */
export function toAuditRecord(entry: AuditEntry): Record<string, unknown> {
  const record: Record<string, unknown> = {}
  for (const name of ENTRY_FIELDS) {
    const value = entry[name]
    if (value !== undefined) record[name] = name === 'context' ? sortedKeys(value as Record<string, string>) : value
  }
  return record
}

/** The record of a key access or of a checkpoint. */
export function toTrailRecord(entry: TrailEntry): Record<string, unknown> {
  return isCheckpointEntry(entry) ? checkpointRecord(entry) : toAuditRecord(entry)
}

/** A copy with the keys in sorted order; built with fromEntries so that a key named `__proto__` stays a key. */
function sortedKeys(object: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** `{ ...record, chain, seq }`, with chain and seq in their sorted places when the record's keys are sorted. */
function withChainLink(record: AuditRecord, chain: string, seq: number): Record<string, unknown> {
  const fields: Record<string, unknown> = {}
  let chainPlaced = false
  let seqPlaced = false
  for (const name in record) {
    if (name === 'chain' || name === 'seq') continue
    if (!chainPlaced && name > 'chain') {
      fields.chain = chain
      chainPlaced = true
    }
    if (!seqPlaced && name > 'seq') {
      fields.seq = seq
      seqPlaced = true
    }
    // A key named __proto__ must stay a key, not become the object's prototype.
    if (name === '__proto__') Object.defineProperty(fields, name, { value: record[name], enumerable: true, writable: true, configurable: true })
    else fields[name] = record[name]
  }
  if (!chainPlaced) fields.chain = chain
  if (!seqPlaced) fields.seq = seq
  return fields
}

/** The part of a written payload (a file or stdout line, or a LogEntry's jsonPayload) that the hash covers. */
export function hashedFields(payload: AuditRecord): Record<string, unknown> {
  const fields: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(payload)) {
    if (!UNHASHED_FIELDS.has(name) && !name.startsWith(LOG_AGENT_PREFIX)) fields[name] = value
  }
  return fields
}
