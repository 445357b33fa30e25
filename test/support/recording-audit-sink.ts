import type { AuditEntry } from '../../src/audit/audit-entry.js'
import type { AuditSink } from '../../src/audit/audit-sink.js'

/** An audit sink that keeps entries in memory, and can be told to fail like an unwritable sink. */
export class RecordingAuditSink implements AuditSink {
  readonly entries: AuditEntry[] = []
  failing = false

  async write(entry: AuditEntry): Promise<void> {
    if (this.failing) throw new Error('audit sink is failing (test)')
    this.entries.push(entry)
  }

  async close(): Promise<void> {}
}
