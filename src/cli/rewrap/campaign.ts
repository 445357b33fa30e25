/**
 * A rewrap campaign over a stream of lines: chunks of `chunkSize` lines go to :batchRewrap, at most
 * `concurrency` at once, and their output is written strictly in input order. At most twice as many
 * chunks as run at once are held (in flight or finished, waiting for an earlier one), so memory does
 * not grow with the input. A chunk that fails as a whole (no answer, 429, 5xx) is sent again after
 * Retry-After or a backoff; items that fail with a transient problem are sent again on their own;
 * what still fails after `attempts` is written with its problem. A failure no retry can mend (401,
 * 403, 404, 400) stops the campaign after the chunks before it are written.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { isTransient, ServiceError, type BatchRewrapResult, type KeywrapClient } from '../keywrap-client.js'
import type { LineSink } from './jsonl-files.js'
import { outputLine, parseInputLine, type InputLine, type LineOutcome } from './lines.js'
import { backoffSeconds, Pacer, retryDelaySeconds } from './pacing.js'

export interface CampaignOptions {
  readonly client: KeywrapClient
  readonly alias: string
  readonly chunkSize: number
  readonly concurrency: number
  /** Items per second; undefined: no cap. */
  readonly rate: number | undefined
  /** Attempts per chunk and per item, the first included. */
  readonly attempts: number
  /** Longest wait a Retry-After is honoured for. */
  readonly maxRetryAfterSeconds?: number
}

export interface CampaignCounts {
  /** Lines written. */
  lines: number
  rewrapped: number
  /** Keys already under the primary version, written as they were. */
  current: number
  failed: number
  /** Chunk and item attempts that were retried. */
  retries: number
}

export class CampaignStopped extends Error {
  constructor(readonly failure: ServiceError) {
    super(failure.message)
  }
}

interface ChunkResult {
  readonly text: string
  readonly lines: number
  readonly rewrapped: number
  readonly current: number
  readonly failed: number
}

export class RewrapCampaign {
  readonly counts: CampaignCounts = { lines: 0, rewrapped: 0, current: 0, failed: 0, retries: 0 }
  private readonly pacer: Pacer
  private stopping = false

  constructor(private readonly options: CampaignOptions) {
    this.pacer = new Pacer(options.concurrency, options.rate)
  }

  /** Stops reading new lines; what was read is finished and written. */
  stop(): void {
    this.stopping = true
  }

  /** Runs the campaign over `lines`; rejects with CampaignStopped when a failure stopped it. */
  async run(lines: AsyncIterable<string>, sink: LineSink): Promise<void> {
    const window: Promise<ChunkResult>[] = []
    const windowSize = this.options.concurrency * 2
    const writeFirst = async () => {
      const result = await window.shift()!
      await sink.write(result.text)
      this.counts.lines += result.lines
      this.counts.rewrapped += result.rewrapped
      this.counts.current += result.current
      this.counts.failed += result.failed
    }
    try {
      let chunk: InputLine[] = []
      for await (const text of lines) {
        chunk.push(parseInputLine(text))
        if (chunk.length < this.options.chunkSize) continue
        window.push(this.settle(this.process(chunk)))
        chunk = []
        if (window.length >= windowSize) await writeFirst()
        if (this.stopping) break
      }
      if (chunk.length > 0 && !this.stopping) window.push(this.settle(this.process(chunk)))
      while (window.length > 0) await writeFirst()
    } finally {
      // After a stop, the chunks behind the one that failed are dropped unwritten (a resume redoes them).
      await Promise.allSettled(window)
    }
  }

  /** Marks a chunk's rejection as handled until its turn to be written comes. */
  private settle(promise: Promise<ChunkResult>): Promise<ChunkResult> {
    promise.catch(() => this.stop())
    return promise
  }

  private async process(chunk: readonly InputLine[]): Promise<ChunkResult> {
    const outcomes = new Array<LineOutcome | undefined>(chunk.length)
    let pending = chunk.flatMap((line, index) => (line.kind === 'key' ? [index] : []))
    for (let attempt = 1; pending.length > 0; attempt++) {
      const items = pending.map((index) => (chunk[index] as Extract<InputLine, { kind: 'key' }>).item)
      let results: BatchRewrapResult[]
      try {
        results = await this.pacer.run(items.length, () => this.options.client.batchRewrap(this.options.alias, items))
      } catch (error) {
        if (!(error instanceof ServiceError)) throw error
        if (!error.transient) throw new CampaignStopped(error)
        if (attempt >= this.options.attempts) {
          for (const index of pending) outcomes[index] = { error: error.problem }
          break
        }
        this.counts.retries++
        await this.wait(error, attempt)
        continue
      }
      const retry: number[] = []
      results.forEach((result, position) => {
        const index = pending[position]!
        if ('error' in result && isTransient(result.error) && attempt < this.options.attempts) retry.push(index)
        else outcomes[index] = result
      })
      if (retry.length > 0) {
        this.counts.retries++
        await sleep(backoffSeconds(attempt) * 1000)
      }
      pending = retry
    }
    let text = ''
    let rewrapped = 0
    let current = 0
    let failed = 0
    chunk.forEach((line, index) => {
      const outcome = outcomes[index]
      text += outputLine(line, outcome)
      if (line.kind === 'invalid' || (outcome && 'error' in outcome)) failed++
      else if (outcome?.rewrapped) rewrapped++
      else if (outcome) current++
    })
    return { text, lines: chunk.length, rewrapped, current, failed }
  }

  /** Waits as long as Retry-After says (pausing every other request too), or a backoff without one. */
  private async wait(error: ServiceError, attempt: number): Promise<void> {
    const seconds = retryDelaySeconds(error.retryAfterSeconds, attempt, this.options.maxRetryAfterSeconds)
    if (error.retryAfterSeconds !== undefined) this.pacer.pause(seconds)
    await sleep(seconds * 1000)
  }
}
