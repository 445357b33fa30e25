/**
 * Audit entries as Cloud Logging structured JSON lines on stdout, written with @google-cloud/logging's
 * LogSync (Cloud Run ships stdout to Cloud Logging; the `audit` label routes these lines apart from the
 * request log). LogSync swallows write errors, so it writes through a transport that keeps each line's
 * completion, and write() waits for it: an entry that cannot be written fails the access.
 */
import type { Writable } from 'node:stream'
import { Logging } from '@google-cloud/logging'
import type { LogSync } from '@google-cloud/logging'
import { AUDIT_SEVERITY, type AuditEntry } from './audit-entry.js'
import type { AuditSink } from './audit-sink.js'

export interface LineStream {
  write(chunk: string, callback: (error?: Error | null) => void): boolean
}

const WRITE_TIMEOUT_MS = 2000

class CompletionTrackingTransport {
  private pending: Promise<void>[] = []
  constructor(private readonly stream: LineStream) {}

  write(line: string): boolean {
    this.pending.push(
      new Promise((resolve, reject) => {
        this.stream.write(line, (error) => (error ? reject(error) : resolve()))
      }),
    )
    return true
  }

  /** The completion of the lines written since the last take(); undefined if none was written. */
  take(): Promise<void> | undefined {
    const pending = this.pending
    this.pending = []
    return pending.length > 0 ? Promise.all(pending).then(() => undefined) : undefined
  }
}

export class StdoutAuditSink implements AuditSink {
  private readonly transport: CompletionTrackingTransport
  private readonly log: LogSync

  constructor(options: { projectId: string; logName: string; stream?: LineStream }) {
    this.transport = new CompletionTrackingTransport(options.stream ?? process.stdout)
    const logging = new Logging({ projectId: options.projectId })
    this.log = logging.logSync(options.logName, this.transport as unknown as Writable, {
      useMessageField: false,
    })
  }

  async write(entry: AuditEntry): Promise<void> {
    this.log.write(
      this.log.entry(
        {
          severity: AUDIT_SEVERITY[entry.outcome],
          labels: { audit: 'true' },
          operation: { id: entry.requestId, producer: 'keywrap' },
        },
        { ...entry, message: `audit ${entry.operation} ${entry.alias} ${entry.outcome}` },
      ),
    )
    const written = this.transport.take()
    if (!written) throw new Error('The audit entry could not be formatted.')
    await withTimeout(written, WRITE_TIMEOUT_MS)
  }

  async close(): Promise<void> {}
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`The audit entry was not written within ${ms} ms.`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
