/**
 * Deadlines instead of the client library's defaults (which retry UNAVAILABLE for up to ten minutes):
 * every attempt gets `min(callTimeoutMs, what is left of totalBudgetMs)`, transient failures are
 * retried after a full-jitter exponential backoff while the budget lasts, integrity failures at most
 * `maxIntegrityRetries` times, and anything else is not retried.
 */
import { setTimeout as sleep } from 'node:timers/promises'

export interface RetryPolicy {
  readonly callTimeoutMs: number
  readonly totalBudgetMs: number
  readonly maxIntegrityRetries: number
  /** Uniform in [0, 1); the jitter source. */
  readonly random: () => number
  readonly initialBackoffMs?: number
  readonly maxBackoffMs?: number
}

/** How one failed attempt may be handled: retried while the budget lasts, retried a limited number of times, or not. */
export type FailureKind = 'transient' | 'integrity' | 'final'

const INITIAL_BACKOFF_MS = 25
const MAX_BACKOFF_MS = 1000
/** An attempt with less time than this left cannot reach Cloud KMS and back; give up instead. */
const MIN_ATTEMPT_MS = 20

/**
 * Runs `attempt` until it succeeds, a failure is not to be retried, or the budget is spent; then throws
 * the last failure as it was. `onRetry` is told about each failure that is retried.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  attempt: (timeoutMs: number) => Promise<T>,
  classify: (error: unknown) => FailureKind,
  onRetry: (error: unknown) => void = () => undefined,
): Promise<T> {
  const deadline = performance.now() + policy.totalBudgetMs
  let integrityRetries = 0
  for (let attempts = 0; ; attempts++) {
    const remaining = deadline - performance.now()
    try {
      return await attempt(Math.max(1, Math.floor(Math.min(policy.callTimeoutMs, remaining))))
    } catch (error) {
      const kind = classify(error)
      if (kind === 'final') throw error
      if (kind === 'integrity' && integrityRetries++ >= policy.maxIntegrityRetries) throw error
      const delay = backoffMs(policy, attempts)
      if (deadline - performance.now() - delay < MIN_ATTEMPT_MS) throw error
      onRetry(error)
      if (delay > 0) await sleep(delay)
    }
  }
}

/** Full jitter: uniform in [0, min(max, initial · 2^attempt)). */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxBackoffMs ?? MAX_BACKOFF_MS, (policy.initialBackoffMs ?? INITIAL_BACKOFF_MS) * 2 ** attempt)
  return Math.floor(policy.random() * ceiling)
}
