/**
 * Audit entries as Cloud Logging structured JSON lines on stdout (Cloud Run ships stdout to Cloud
 * Logging; the `audit` label routes these lines apart from the request log). A batch of lines is one
 * stream write (the request log writes to the same stream, so lines never interleave); write() waits
 * for the stream's callback, so an entry that cannot be written fails the access.
 */
import type { Metrics } from '../metrics/metrics.js'
import type { TrailEntry } from './audit-entry.js'
import type { SealedRecord } from './chain.js'
import { GroupCommitSink, type BatchWriter } from './group-commit.js'
import { StructuredLineFormatter } from './structured-lines.js'

export interface LineStream {
  write(chunk: string, callback: (error?: Error | null) => void): boolean
}

export interface StdoutAuditSinkOptions {
  projectId: string
  logName: string
  /** Default process.stdout. */
  stream?: LineStream
  /** Default 2000. */
  writeTimeoutMs?: number
  metrics?: Metrics
}

class LineStreamWriter implements BatchWriter<string> {
  constructor(
    private readonly formatter: StructuredLineFormatter,
    private readonly stream: LineStream,
  ) {}

  format(sealed: SealedRecord, entry: TrailEntry): string {
    return this.formatter.format(sealed, entry)
  }

  async commit(items: readonly string[]): Promise<void> {
    const lines = items.join('')
    await new Promise<void>((resolve, reject) => void this.stream.write(lines, (error) => (error ? reject(error) : resolve())))
  }

  async close(): Promise<void> {}
}

export class StdoutAuditSink extends GroupCommitSink<string> {
  constructor(options: StdoutAuditSinkOptions) {
    const writer = new LineStreamWriter(new StructuredLineFormatter(options), options.stream ?? process.stdout)
    super(writer, { sink: 'stdout', writeTimeoutMs: options.writeTimeoutMs, metrics: options.metrics })
  }
}
