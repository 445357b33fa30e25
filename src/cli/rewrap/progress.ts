/**
 * Progress of a campaign on standard error: on a terminal a bar redrawn in place (done/total, rate,
 * ETA, failures); otherwise (a log, a pipe, CI) a plain line every few seconds.
 */
import type { CampaignCounts } from './campaign.js'

export interface ProgressOptions {
  readonly stream: NodeJS.WriteStream
  /** Lines of the whole input, counted before the run. */
  readonly total: number
  /** Lines already done by an earlier run (--resume). */
  readonly resumedAt: number
  /** Seconds between plain lines. */
  readonly intervalSeconds: number
}

const BAR_WIDTH = 30
const REDRAW_MS = 200

export class Progress {
  private readonly started = performance.now()
  private timer: NodeJS.Timeout | undefined
  private readonly terminal: boolean

  constructor(
    private readonly counts: CampaignCounts,
    private readonly options: ProgressOptions,
  ) {
    this.terminal = options.stream.isTTY === true
  }

  start(): void {
    const every = this.terminal ? REDRAW_MS : this.options.intervalSeconds * 1000
    this.timer = setInterval(() => this.show(), every)
    this.timer.unref()
  }

  /** Stops the updates; on a terminal the bar's last state stays on its line. */
  finish(): void {
    clearInterval(this.timer)
    if (this.terminal) this.options.stream.write(`\r\x1b[K${this.status()}\n`)
  }

  private show(): void {
    this.options.stream.write(this.terminal ? `\r\x1b[K${this.status()}` : `rewrap: ${this.status()}\n`)
  }

  /** E.g. `[#######-----] 45,000/100,000 45.0% 1,234 keys/s ETA 0:45 failed 0`. */
  status(): string {
    const { total, resumedAt } = this.options
    const done = resumedAt + this.counts.lines
    const seconds = (performance.now() - this.started) / 1000
    const rate = seconds > 0 ? this.counts.lines / seconds : 0
    const fraction = total > 0 ? Math.min(1, done / total) : 1
    const eta = rate > 0 ? duration((total - done) / rate) : '?'
    const filled = Math.round(fraction * BAR_WIDTH)
    const bar = this.terminal ? `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ` : ''
    return `${bar}${number(done)}/${number(total)} ${(fraction * 100).toFixed(1)}% ${number(Math.round(rate))} keys/s ETA ${eta} failed ${number(this.counts.failed)}`
  }
}

function number(value: number): string {
  return value.toLocaleString('en-US')
}

/** h:mm:ss or m:ss. */
export function duration(totalSeconds: number): string {
  const seconds = Math.max(0, Math.round(totalSeconds))
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = String(seconds % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`
}
