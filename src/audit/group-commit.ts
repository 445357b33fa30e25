/**
 * The write path every sink shares: entries queue in call order, take the next links of the sink's
 * hash chain, and go out in batches, one batch in flight at a time. A write resolves when the batch
 * holding its entry is written, and rejects when it fails or when writeTimeoutMs passes first.
 *
 * One batch in flight keeps a chain gap-free: when a batch fails, its entries are the chain's last
 * ones, and the sink starts a new chain for whatever comes next instead of building on entries that
 * may not exist. A batch still in flight when one of its writes times out may yet land, so it is
 * abandoned the same way and the next batch starts at once on the new chain.
 */
import type { Metrics } from '../metrics/metrics.js'
import type { AuditEntry, TrailEntry } from './audit-entry.js'
import type { AuditSink } from './audit-sink.js'
import { AuditChain, GENESIS_HASH, toTrailRecord, type SealedRecord } from './chain.js'
import type { CheckpointEntry } from './checkpoint.js'
import { TurnWindow } from './turn-window.js'

export const DEFAULT_WRITE_TIMEOUT_MS = 2000

export interface BatchWriter<Item> {
  /** Formats one entry; throws if it cannot be written at all (the chain does not move). */
  format(sealed: SealedRecord, entry: TrailEntry): Item
  /** Writes the items in order; resolves once all are written. `timeoutMs`: how long the batch may still take. */
  commit(items: readonly Item[], timeoutMs: number): Promise<void>
  close(): Promise<void>
}

export interface GroupCommitOptions {
  /** Sink name for the metrics' `sink` label. */
  readonly sink: string
  readonly writeTimeoutMs?: number
  /** How long the first entry of a batch waits for company; 0 sends at once (later entries still group while a batch is in flight). */
  readonly batchWindowMs?: number
  /** With no batchWindowMs: the entries of an event-loop turn wait for the turn's end, to go out together (turn-window.ts). */
  readonly batchWithinTurn?: boolean
  readonly maxBatchEntries?: number
  readonly metrics?: Metrics
}

export class AuditTimeoutError extends Error {
  constructor(ms: number) {
    super(`The audit entry was not written within ${ms} ms.`)
    this.name = 'AuditTimeoutError'
  }
}

/** Where a chain stands: its last written entry (seq 0 and GENESIS_HASH before the first). */
export interface ChainHead {
  readonly chain: string
  readonly seq: number
  readonly hash: string
}

/** A checkpoint meant for one chain finds the sink on another (a write failed in between). */
export class ChainMovedError extends Error {
  constructor(chain: string) {
    super(`The audit chain ${chain} ended before its checkpoint could be written.`)
    this.name = 'ChainMovedError'
  }
}

interface PendingWrite {
  readonly entry: TrailEntry
  /** For a checkpoint: the chain it must be written to. */
  readonly chain: string | undefined
  readonly started: number
  readonly deadline: number
  /** Called with where the entry landed (for a checkpoint: `written` is set). */
  readonly resolve: (written: ChainHead | undefined) => void
  readonly reject: (error: Error) => void
  settled: boolean
  /** A checkpoint's place in the chain, once sealed. */
  written?: ChainHead
}

interface Batch {
  readonly writes: readonly PendingWrite[]
  readonly chain: AuditChain
  /** The chain's head once the batch is written. */
  readonly head: ChainHead
}

export class GroupCommitSink<Item> implements AuditSink {
  private readonly writer: BatchWriter<Item>
  private readonly sink: string
  private readonly writeTimeoutMs: number
  private readonly batchWindowMs: number
  private readonly maxBatchEntries: number
  private readonly metrics: Metrics | undefined
  private chain = new AuditChain()
  /** The current chain's last written entry. */
  private written: ChainHead = { chain: this.chain.id, seq: 0, hash: GENESIS_HASH }
  private lastBatchFailed = false
  private queue: PendingWrite[] = []
  private current: Batch | undefined
  private window: NodeJS.Timeout | undefined
  private readonly turn: TurnWindow | undefined
  /** Writes not yet settled, oldest first: with one timeout for all, also in order of deadline. */
  private readonly unsettled = new Set<PendingWrite>()
  /** One timer for the oldest unsettled write's deadline, instead of one per write (a tenth of an audit write's CPU). */
  private deadlineTimer: NodeJS.Timeout | undefined
  private drainWaiters: (() => void)[] = []
  /** Set by drain() and close(): key accesses are refused, checkpoints still taken until close(). */
  private refusing = false
  private closing: Promise<void> | undefined

  constructor(writer: BatchWriter<Item>, options: GroupCommitOptions) {
    this.writer = writer
    this.sink = options.sink
    this.writeTimeoutMs = options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS
    this.batchWindowMs = options.batchWindowMs ?? 0
    this.turn = options.batchWithinTurn ? new TurnWindow(() => this.flush()) : undefined
    this.maxBatchEntries = options.maxBatchEntries ?? 500
    this.metrics = options.metrics
    if (!(this.writeTimeoutMs > 0)) throw new RangeError('writeTimeoutMs must be positive')
    if (!(this.maxBatchEntries >= 1)) throw new RangeError('maxBatchEntries must be at least 1')
  }

  /** The chain entries are written to now; a new one after each failed write. */
  get chainId(): string {
    return this.chain.id
  }

  write(entry: AuditEntry): Promise<void> {
    if (this.refusing) {
      this.metrics?.auditFailures.inc({ sink: this.sink })
      return Promise.reject(new Error('The audit sink is closed.'))
    }
    return new Promise<void>((resolve, reject) => this.enqueue(entry, undefined, () => resolve(), reject))
  }

  /** The current chain's last written entry. */
  head(): ChainHead {
    return this.written
  }

  /**
   * Writes a checkpoint of `chain` after the entries queued before it; resolves with where it landed.
   * Rejects with ChainMovedError when the sink is on another chain by then (the checkpoint is not written).
   */
  appendCheckpoint(entry: CheckpointEntry, chain: string): Promise<ChainHead> {
    if (this.closing) return Promise.reject(new Error('The audit sink is closed.'))
    return new Promise<ChainHead>((resolve, reject) => this.enqueue(entry, chain, (written) => resolve(written!), reject))
  }

  /** Refuses new key accesses from now on and resolves once every entry queued is written or refused. */
  drain(): Promise<void> {
    this.refusing = true
    this.schedule(true)
    if (this.unsettled.size === 0) return Promise.resolve()
    return new Promise<void>((resolve) => this.drainWaiters.push(resolve))
  }

  private enqueue(entry: TrailEntry, chain: string | undefined, resolve: (written: ChainHead | undefined) => void, reject: (error: Error) => void): void {
    const started = performance.now()
    const write: PendingWrite = { entry, chain, started, deadline: started + this.writeTimeoutMs, resolve, reject, settled: false }
    this.unsettled.add(write)
    this.deadlineTimer ??= this.armDeadline(write.deadline)
    this.queue.push(write)
    this.schedule(this.refusing)
  }

  /** False while the last batch failed to be written: every key access is being refused (503). */
  healthy(): boolean {
    return !this.lastBatchFailed
  }

  /** Stops taking entries, writes the ones already queued (each still bounded by its timeout), then releases the writer. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.drain()
      await this.writer.close()
    })()
    return this.closing
  }

  private schedule(now: boolean): void {
    if (this.current || this.queue.length === 0) return
    if (!now && !this.refusing && this.batchWindowMs > 0 && this.queue.length < this.maxBatchEntries) {
      this.window ??= setTimeout(() => this.flush(), this.batchWindowMs)
      return
    }
    if (!now && !this.refusing && this.turn && this.queue.length < this.maxBatchEntries) {
      this.turn.wait()
      return
    }
    this.flush()
  }

  private flush(): void {
    clearTimeout(this.window)
    this.window = undefined
    this.turn?.cancel()
    if (this.current || this.queue.length === 0) return
    const chain = this.chain
    const writes: PendingWrite[] = []
    const items: Item[] = []
    let last: SealedRecord | undefined
    for (const write of this.queue.splice(0, this.maxBatchEntries)) {
      if (write.chain !== undefined && write.chain !== chain.id) {
        this.settle(write, new ChainMovedError(write.chain))
        continue
      }
      let sealed: SealedRecord
      let item: Item
      try {
        sealed = chain.seal(toTrailRecord(write.entry))
        item = this.writer.format(sealed, write.entry)
      } catch (error) {
        this.settle(write, asError(error))
        continue
      }
      chain.accept(sealed)
      if (write.chain !== undefined) write.written = { chain: chain.id, seq: sealed.seq, hash: sealed.hash }
      last = sealed
      writes.push(write)
      items.push(item)
    }
    if (writes.length === 0) return this.schedule(true)

    const batch: Batch = { writes, chain, head: { chain: chain.id, seq: last!.seq, hash: last!.hash } }
    this.current = batch
    // The newest write of the batch has the latest deadline.
    const timeoutMs = Math.max(1, Math.ceil(writes[writes.length - 1]!.deadline - performance.now()))
    let committed: Promise<void>
    try {
      committed = this.writer.commit(items, timeoutMs)
    } catch (error) {
      committed = Promise.reject(asError(error))
    }
    committed.then(
      () => {
        this.lastBatchFailed = false
        if (this.chain === chain) this.written = batch.head
        for (const write of writes) this.settle(write)
        this.finish(batch)
      },
      (error: unknown) => {
        this.lastBatchFailed = true
        for (const write of writes) this.settle(write, asError(error))
        this.rotate(chain)
        this.finish(batch)
      },
    )
  }

  private finish(batch: Batch): void {
    if (this.current !== batch) return
    this.current = undefined
    this.schedule(true)
  }

  private armDeadline(deadline: number): NodeJS.Timeout {
    // At least 1 ms: the timer's clock may run a little ahead of performance.now().
    return setTimeout(() => this.expireDue(), Math.max(1, Math.ceil(deadline - performance.now())))
  }

  /**
   * Expires every write whose deadline has passed, then waits for the next one's. All of them are
   * refused before the batch in flight is abandoned, so that none of them is sealed into the next
   * batch only to be abandoned with it.
   */
  private expireDue(): void {
    this.deadlineTimer = undefined
    const now = performance.now()
    const due: PendingWrite[] = []
    for (const write of this.unsettled) {
      if (write.deadline > now) break
      due.push(write)
    }
    const batch = this.current
    let abandoned = false
    for (const write of due) {
      const queued = this.queue.indexOf(write)
      if (queued >= 0) this.queue.splice(queued, 1)
      this.settle(write, new AuditTimeoutError(this.writeTimeoutMs))
      abandoned ||= batch?.writes.includes(write) === true
    }
    if (batch && abandoned && this.current === batch) {
      this.current = undefined
      this.rotate(batch.chain)
      this.schedule(true)
    }
    const next = this.unsettled.values().next()
    if (!next.done) this.deadlineTimer ??= this.armDeadline(next.value.deadline)
  }

  private rotate(chain: AuditChain): void {
    if (this.chain !== chain) return
    this.chain = new AuditChain()
    this.written = { chain: this.chain.id, seq: 0, hash: GENESIS_HASH }
  }

  private settle(write: PendingWrite, error?: Error): void {
    if (write.settled) return
    write.settled = true
    this.unsettled.delete(write)
    if (error) {
      this.metrics?.auditFailures.inc({ sink: this.sink })
      write.reject(error)
    } else {
      this.metrics?.auditWrites.observe({ sink: this.sink }, (performance.now() - write.started) / 1000)
      write.resolve(write.written)
    }
    if (this.unsettled.size === 0) {
      clearTimeout(this.deadlineTimer)
      this.deadlineTimer = undefined
      for (const resolve of this.drainWaiters.splice(0)) resolve()
    }
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}
