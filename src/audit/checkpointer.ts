/**
 * Takes the signed checkpoints of a sink's chains (checkpoint.ts): one when the sink starts, one every
 * interval in which entries were written (an idle instance writes none), one when it closes, and the
 * first of each new chain after a failed write.
 *
 * A checkpoint is signed first and queued after, like any entry: a slow or failing signer never holds
 * up a key access. A checkpoint that cannot be signed or written is skipped, logged once (until one
 * succeeds again), and taken at the next interval; `audit verify` shows the gap.
 */
import type { AuditEntry } from './audit-entry.js'
import type { AuditSink } from './audit-sink.js'
import { GENESIS_HASH } from './chain.js'
import { CHECKPOINT_OPERATION, signedBytes, type CheckpointEntry, type CheckpointEvent, type CheckpointStatement } from './checkpoint.js'
import type { CheckpointSigner } from './checkpoint-signer.js'
import type { ChainHead } from './group-commit.js'
import type { Logger } from '../support/logger.js'

/** What the checkpointer needs of a sink (GroupCommitSink has it). */
export interface CheckpointTarget {
  head(): ChainHead
  appendCheckpoint(entry: CheckpointEntry, chain: string): Promise<ChainHead>
  drain(): Promise<void>
}

export interface CheckpointerOptions {
  readonly intervalSeconds: number
  /** How long one signature may take (default 2000 ms). */
  readonly signTimeoutMs?: number
  readonly log: Pick<Logger, 'info' | 'error'>
  /** Default `() => new Date()`. */
  readonly now?: () => Date
  /** False: no timer; the owner calls checkpoint() (tests). Default true. */
  readonly timer?: boolean
}

export class Checkpointer {
  private readonly intervalSeconds: number
  private readonly signTimeoutMs: number
  private readonly now: () => Date
  /** The last checkpoint written: its chain, and the checkpoint entry's own seq and hash. */
  private last: ChainHead | undefined
  private running: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private failing = false
  private stopped = false

  constructor(
    private readonly target: CheckpointTarget,
    private readonly signer: CheckpointSigner,
    private readonly options: CheckpointerOptions,
  ) {
    if (!(options.intervalSeconds >= 1)) throw new RangeError('intervalSeconds must be at least 1')
    this.intervalSeconds = options.intervalSeconds
    this.signTimeoutMs = options.signTimeoutMs ?? 2000
    this.now = options.now ?? (() => new Date())
  }

  /** Takes the start checkpoint (without waiting for it) and, unless told not to, every interval's. */
  start(): void {
    void this.checkpoint()
    if (this.options.timer === false) return
    this.timer = setInterval(() => void this.checkpoint(), this.intervalSeconds * 1000)
    this.timer.unref()
  }

  /**
   * One checkpoint, if one is due: the chain's first, or entries were written since the last. Resolves
   * when it is written or given up (never rejects). While one is being taken, another call waits for it.
   */
  async checkpoint(): Promise<void> {
    if (this.stopped) return
    await this.take('due')
  }

  /** No more timed checkpoints; waits for the one in progress, the entries queued, then writes the shutdown checkpoint. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.timer)
    await this.running
    await this.target.drain()
    await this.take('shutdown')
  }

  private take(kind: 'due' | 'shutdown'): Promise<void> {
    if (this.running) return kind === 'due' ? this.running : this.running.then(() => this.take(kind))
    const running = this.cycle(kind).finally(() => {
      if (this.running === running) this.running = undefined
    })
    this.running = running
    return running
  }

  private async cycle(kind: 'due' | 'shutdown'): Promise<void> {
    const head = this.target.head()
    const last = this.last?.chain === head.chain ? this.last : undefined
    if (kind === 'due' && last && head.seq <= last.seq) return
    const event: CheckpointEvent = kind === 'shutdown' ? 'shutdown' : last ? 'interval' : 'start'
    const statement: CheckpointStatement = {
      chain: head.chain,
      lastSeq: head.seq,
      lastHash: head.hash,
      time: this.now().toISOString(),
      previousCheckpoint: last?.hash ?? GENESIS_HASH,
      event,
      intervalSeconds: this.intervalSeconds,
      algorithm: this.signer.algorithm,
      key: this.signer.keyId,
    }
    try {
      const signature = await this.signer.sign(signedBytes(statement), this.signTimeoutMs)
      const entry: CheckpointEntry = {
        time: statement.time,
        operation: CHECKPOINT_OPERATION,
        checkpoint: { ...statement, signature: signature.toString('base64') },
      }
      const written = await this.target.appendCheckpoint(entry, head.chain)
      this.last = written
      if (this.failing) {
        this.failing = false
        this.options.log.info({ chain: written.chain, seq: written.seq }, 'audit checkpoints are written again')
      }
    } catch (error) {
      if (this.failing) return
      this.failing = true
      this.options.log.error(
        { event, chain: head.chain, key: this.signer.keyId, error: (error as Error).message },
        `audit checkpoint not written; ${kind === 'shutdown' ? 'the chain ends without its shutdown checkpoint' : 'retrying at the next interval'}`,
      )
    }
  }
}

/** A sink whose chains are checkpointed: close() writes the shutdown checkpoint after the last entry. */
export class CheckpointedAuditSink implements AuditSink {
  readonly checkpointer: Checkpointer
  private closing: Promise<void> | undefined

  constructor(
    private readonly sink: AuditSink & CheckpointTarget,
    private readonly signer: CheckpointSigner,
    options: CheckpointerOptions,
  ) {
    this.checkpointer = new Checkpointer(sink, signer, options)
    this.checkpointer.start()
  }

  write(entry: AuditEntry): Promise<void> {
    return this.sink.write(entry)
  }

  healthy(): boolean {
    return this.sink.healthy?.() ?? true
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.checkpointer.stop()
      await this.sink.close()
      await this.signer.close()
    })()
    return this.closing
  }
}
