/**
 * Audit entries appended to a file as JSON lines, in the same structured shape as on stdout (so the
 * Ops Agent or any shipper can forward them). Opened for appending only; each batch is one write, so
 * several processes can share the file, their chains interleaving line by line. A write resolves once
 * the kernel has taken every byte of its batch (not fsync: the file survives the process, not the
 * machine); an error such as ENOSPC rejects it.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Metrics } from '../metrics/metrics.js'
import type { TrailEntry } from './audit-entry.js'
import type { SealedRecord } from './chain.js'
import { GroupCommitSink, type BatchWriter } from './group-commit.js'
import { StructuredLineFormatter } from './structured-lines.js'

export interface FileAuditSinkOptions {
  path: string
  projectId: string
  logName: string
  /** Default 2000. */
  writeTimeoutMs?: number
  metrics?: Metrics
}

class AppendWriter implements BatchWriter<string> {
  private handle: Promise<FileHandle> | undefined
  /** A failed write may have left part of a line; the next write ends it first so that its own lines parse. */
  private torn = false

  constructor(
    private readonly path: string,
    private readonly formatter: StructuredLineFormatter,
  ) {}

  format(sealed: SealedRecord, entry: TrailEntry): string {
    return this.formatter.format(sealed, entry)
  }

  async commit(items: readonly string[]): Promise<void> {
    const data = Buffer.from((this.torn ? '\n' : '') + items.join(''), 'utf8')
    try {
      this.handle ??= open(this.path, 'a', 0o600)
      const handle = await this.handle
      for (let offset = 0; offset < data.length;) {
        const { bytesWritten } = await handle.write(data, offset, data.length - offset)
        offset += bytesWritten
      }
      this.torn = false
    } catch (error) {
      this.torn = true
      await this.release()
      throw error
    }
  }

  async close(): Promise<void> {
    await this.release()
  }

  private async release(): Promise<void> {
    const handle = this.handle
    this.handle = undefined
    await handle?.then((opened) => opened.close()).catch(() => undefined)
  }
}

export class FileAuditSink extends GroupCommitSink<string> {
  readonly path: string

  constructor(options: FileAuditSinkOptions) {
    const path = resolve(options.path)
    super(new AppendWriter(path, new StructuredLineFormatter(options)), {
      sink: 'file',
      writeTimeoutMs: options.writeTimeoutMs,
      metrics: options.metrics,
    })
    this.path = path
  }
}
