/**
 * A process-wide cap on concurrent provider calls (Cloud KMS quota is the fleet's, and each call holds
 * a socket and memory), with a short bounded queue. Past both, a call is refused at once with 503
 * `overloaded` rather than waiting behind hundreds of others.
 */
import { KeywrapError } from '../errors.js'

export interface ProviderGateLimits {
  /** Provider calls running at once. */
  readonly concurrency: number
  /** Calls waiting for a slot; more are refused. */
  readonly queue: number
}

export class ProviderGate {
  private running = 0
  private readonly waiting: (() => void)[] = []

  constructor(private readonly limits: ProviderGateLimits) {}

  run<T>(call: () => Promise<T>): Promise<T> {
    if (this.running < this.limits.concurrency) {
      this.running++
      return this.start(call)
    }
    if (this.waiting.length >= this.limits.queue) {
      return Promise.reject(new KeywrapError('overloaded', 'Too many key-provider calls are in progress; try again.', { retryAfterSeconds: 1 }))
    }
    // The slot is handed over by the call that frees it (release), already counted.
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => this.start(call))
  }

  private async start<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } finally {
      this.release()
    }
  }

  private release(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.running--
  }
}
