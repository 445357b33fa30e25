import type { AuditEntry } from './audit-entry.js'

/**
 * Where audit entries go. write() resolves once the entry is durably handed over; it rejects when it
 * cannot be, and the caller then releases nothing (fail-closed).
 */
export interface AuditSink {
  write(entry: AuditEntry): Promise<void>
  /** False while entries cannot be written (readiness reports it); absent: always considered healthy. */
  healthy?(): boolean
  close(): Promise<void>
}
