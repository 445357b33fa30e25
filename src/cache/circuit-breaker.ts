/**
 * A small circuit breaker for Redis: after `failureThreshold` consecutive failures it opens for
 * `openMs`, during which nothing is attempted (a dead or frozen Redis then costs requests nothing);
 * then it lets one trial through (half-open), which closes it on success or reopens it on failure.
 */

export type BreakerState = 'closed' | 'open' | 'half-open'

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker; default 5. */
  readonly failureThreshold?: number
  /** How long it stays open before a trial; default 2000 ms. */
  readonly openMs?: number
  /** Milliseconds; default Date.now. */
  readonly now?: () => number
}

export class CircuitBreaker {
  private readonly failureThreshold: number
  private readonly openMs: number
  private readonly now: () => number
  private failures = 0
  private openUntil: number | undefined
  private trialRunning = false

  constructor(options: CircuitBreakerOptions = {}) {
    this.failureThreshold = options.failureThreshold ?? 5
    this.openMs = options.openMs ?? 2000
    this.now = options.now ?? Date.now
  }

  state(): BreakerState {
    if (this.openUntil === undefined) return 'closed'
    return this.now() < this.openUntil ? 'open' : 'half-open'
  }

  /** Whether a call may go ahead now; in half-open, only one trial at a time. */
  allows(): boolean {
    const state = this.state()
    if (state === 'closed') return true
    if (state === 'open' || this.trialRunning) return false
    this.trialRunning = true
    return true
  }

  succeeded(): void {
    this.failures = 0
    this.openUntil = undefined
    this.trialRunning = false
  }

  /** The call allowed was not made after all: frees the half-open trial. */
  released(): void {
    this.trialRunning = false
  }

  failed(): void {
    this.failures++
    if (this.trialRunning || this.failures >= this.failureThreshold) this.openUntil = this.now() + this.openMs
    this.trialRunning = false
  }
}
