/** Audit entries and line streams for the audit tests. */
import fc from 'fast-check'
import type { AuditEntry, AuditOutcome } from '../../src/audit/audit-entry.js'
import type { LineStream } from '../../src/audit/stdout-sink.js'

const OUTCOMES: readonly AuditOutcome[] = ['allowed', 'denied', 'failed']

export function auditEntry(overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    time: new Date().toISOString(),
    operation: 'unwrap',
    principal: 'alice',
    issuer: 'urn:keywrap:dev',
    alias: 'default',
    keyVersion: 'local://default/versions/1',
    outcome: 'allowed',
    errorCode: undefined,
    cacheLevel: 'l1',
    context: { app: 'test' },
    wrappedKeyFingerprint: 'AAAAAAAAAAAAAAAAAAAAAA',
    batchIndex: undefined,
    requestId: 'request-1',
    trace: 'projects/test-project/traces/4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    remoteAddress: '127.0.0.1',
    userAgent: 'test-agent',
    latencyMs: 1.25,
    ...overrides,
  }
}

/** The fields auditEntry() sets that every sink carries into its line's payload unchanged. */
export const PAYLOAD_FIELDS = [
  'time',
  'operation',
  'principal',
  'issuer',
  'alias',
  'keyVersion',
  'outcome',
  'cacheLevel',
  'context',
  'wrappedKeyFingerprint',
  'requestId',
  'trace',
  'spanId',
  'remoteAddress',
  'userAgent',
  'latencyMs',
] as const satisfies readonly (keyof AuditEntry)[]

/** Entry `index` of a mixed run: outcomes rotate, each with its own request id. */
export function mixedEntry(index: number): AuditEntry {
  const outcome = OUTCOMES[index % OUTCOMES.length]!
  return auditEntry({
    requestId: `request-${index}`,
    outcome,
    errorCode: outcome === 'denied' ? 'forbidden' : outcome === 'failed' ? 'cannot_unwrap' : undefined,
    batchIndex: index % 7 === 0 ? index : undefined,
  })
}

/** A line stream that keeps the lines it accepts; it can fail or hold back its callbacks. */
export class MemoryLineStream implements LineStream {
  readonly lines: string[] = []
  failing: Error | undefined
  delayMs = 0
  /** While true, lines wait (unwritten) for release(). */
  holding = false
  private readonly held: (() => void)[] = []

  write(chunk: string, callback: (error?: Error | null) => void): boolean {
    const failing = this.failing
    const done = () => {
      if (failing) return callback(failing)
      this.lines.push(chunk)
      callback()
    }
    if (this.holding) this.held.push(done)
    else if (this.delayMs > 0) setTimeout(done, this.delayMs)
    else setImmediate(done)
    return true
  }

  release(): void {
    this.holding = false
    for (const done of this.held.splice(0)) done()
  }

  /** The parsed lines that carry the audit label. */
  auditLines(): Record<string, any>[] {
    return parseAuditLines(this.lines.join(''))
  }
}

export function parseAuditLines(text: string): Record<string, any>[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, any>)
    .filter((line) => line['logging.googleapis.com/labels']?.audit === 'true')
}

/** seq values of `chain` in the order given. */
export function seqsOf(lines: readonly Record<string, any>[], chain: string): number[] {
  return lines.filter((line) => line.chain === chain).map((line) => line.seq as number)
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, index) => from + index)
}

const text = fc.string({ unit: 'binary', maxLength: 24 })
const optional = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined })
/** Any audit entry: arbitrary Unicode (lone surrogates too), optional fields present or not, index-like context keys. */
export const arbitraryEntries: fc.Arbitrary<AuditEntry> = fc.record({
  time: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((date) => date.toISOString()),
  operation: fc.constantFrom('generateDataKey', 'wrap', 'unwrap', 'rewrap', 'cache.purge'),
  principal: optional(text),
  issuer: optional(text),
  alias: text,
  keyVersion: optional(text),
  outcome: fc.constantFrom('allowed', 'denied', 'failed'),
  errorCode: optional(fc.constantFrom('forbidden', 'cannot_unwrap', 'internal')),
  cacheLevel: optional(fc.constantFrom('l1', 'l2', 'provider', 'none')),
  // Keys that look like array indices are the case JSON.stringify would reorder.
  context: optional(fc.dictionary(fc.oneof(text, fc.nat().map(String)), text, { maxKeys: 6 })),
  wrappedKeyFingerprint: optional(text),
  rewrappedKeyFingerprint: optional(text),
  batchIndex: optional(fc.nat(999)),
  requestId: text,
  trace: optional(text),
  spanId: optional(text),
  remoteAddress: optional(text),
  userAgent: optional(text),
  latencyMs: fc.double({ min: 0, max: 1e6, noNaN: true }),
}) as fc.Arbitrary<AuditEntry>
