/**
 * One writer for everything keywrap prints on stdout: request-log lines (pino) and audit lines. Lines
 * written in the same turn of the event loop go out as one write, so a busy instance makes one
 * system call per turn instead of two per request, lines of the two never interleave, and each
 * writer that asks is told when its lines were written (the audit trail waits for that).
 */
export interface LineStream {
  write(chunk: string, callback: (error?: Error | null) => void): boolean
}

type Callback = (error?: Error | null) => void

export class BatchedLineWriter {
  private lines: string[] = []
  private callbacks: Callback[] = []
  private scheduled = false

  constructor(private readonly stream: LineStream) {}

  /** Queues whole lines; `callback` runs once they reached the stream (with its error, if any). */
  write(chunk: string, callback?: Callback): boolean {
    this.lines.push(chunk)
    if (callback) this.callbacks.push(callback)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.flush())
    }
    return true
  }

  /** Writes what is queued now (the next turn would anyway); used at shutdown. */
  flush(): void {
    this.scheduled = false
    if (this.lines.length === 0) return
    const chunk = this.lines.join('')
    const callbacks = this.callbacks
    this.lines = []
    this.callbacks = []
    try {
      this.stream.write(chunk, (error) => {
        for (const callback of callbacks) callback(error)
      })
    } catch (error) {
      for (const callback of callbacks) callback(error as Error)
    }
  }
}
