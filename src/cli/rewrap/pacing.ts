/**
 * What keeps a rewrap campaign inside its budget: at most `concurrency` requests in flight, at most
 * `rate` items a second (--rate), and a pause for everyone when the service says Retry-After.
 */
import { setTimeout as sleep } from 'node:timers/promises'

export class Pacer {
  private nextStartMs = 0
  private pausedUntilMs = 0
  private inFlight = 0
  private readonly waiting: (() => void)[] = []

  constructor(
    private readonly concurrency: number,
    /** Items per second; undefined: no cap. */
    private readonly rate: number | undefined,
  ) {}

  /** Runs `send` for `items` items once a request slot is free, the rate allows them and no pause holds. */
  async run<T>(items: number, send: () => Promise<T>): Promise<T> {
    await this.slot()
    try {
      await this.admit(items)
      return await send()
    } finally {
      this.release()
    }
  }

  /** Holds every request that has not started until `seconds` from now. */
  pause(seconds: number): void {
    this.pausedUntilMs = Math.max(this.pausedUntilMs, Date.now() + seconds * 1000)
  }

  private async admit(items: number): Promise<void> {
    for (;;) {
      const now = Date.now()
      const at = Math.max(now, this.pausedUntilMs, this.rate === undefined ? 0 : this.nextStartMs)
      if (at <= now) break
      await sleep(at - now)
    }
    // Items are spaced 1/rate apart: this request's take the next items' share of time.
    if (this.rate !== undefined) this.nextStartMs = Math.max(this.nextStartMs, Date.now()) + (items / this.rate) * 1000
  }

  private async slot(): Promise<void> {
    if (this.inFlight < this.concurrency) {
      this.inFlight++
      return
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  private release(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.inFlight--
  }
}

/** The longest Retry-After the CLI honours; a longer one is waited this long, then the request is tried again. */
export const MAX_RETRY_AFTER_SECONDS = 120

/** Seconds to wait after a failed attempt: what Retry-After said (at most MAX_RETRY_AFTER_SECONDS), else backoffSeconds(). */
export function retryDelaySeconds(retryAfterSeconds: number | undefined, attempt: number, maxRetryAfterSeconds = MAX_RETRY_AFTER_SECONDS): number {
  return retryAfterSeconds !== undefined ? Math.min(retryAfterSeconds, maxRetryAfterSeconds) : backoffSeconds(attempt)
}

/** Exponential backoff with full jitter: attempt 1 waits up to 0.5 s, doubling to at most 30 s. */
export function backoffSeconds(attempt: number, random: () => number = Math.random): number {
  return Math.min(30, 0.5 * 2 ** (attempt - 1)) * (0.5 + random() / 2)
}
