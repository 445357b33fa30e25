/**
 * When to try a call again: 429 and 503 only (the service answered and did nothing), after the delay
 * its Retry-After asks for, or an exponential backoff with jitter without one; at most `maxAttempts`
 * attempts and `maxDelayMs` of waiting in all. A Retry-After beyond what is left of that budget ends
 * the retries at once: waiting for part of it would only fail later.
 */
export interface RetryOptions {
  /** Attempts in all, the first included (default 3; 1 turns retries off). */
  maxAttempts?: number
  /** Time spent waiting between attempts, in all (default 10,000 ms). */
  maxDelayMs?: number
  /** First backoff when the answer has no Retry-After, doubled each attempt (default 200 ms). */
  baseDelayMs?: number
}

const RETRYABLE_STATUSES = new Set([429, 503])

export class RetryPolicy {
  readonly maxAttempts: number
  readonly maxDelayMs: number
  readonly baseDelayMs: number

  constructor(options: RetryOptions | false | undefined) {
    this.maxAttempts = options === false ? 1 : positiveInteger(options?.maxAttempts ?? 3, 'retry.maxAttempts')
    this.maxDelayMs = options === false ? 0 : nonNegative(options?.maxDelayMs ?? 10_000, 'retry.maxDelayMs')
    this.baseDelayMs = options === false ? 0 : nonNegative(options?.baseDelayMs ?? 200, 'retry.baseDelayMs')
  }

  /**
   * The delay before attempt `attempt + 1`, or undefined when there is none: not a retryable status,
   * no attempt left, or a wait beyond the budget (`waitedMs` already spent).
   */
  delayAfter(attempt: number, status: number, retryAfter: string | null, waitedMs: number): number | undefined {
    if (!RETRYABLE_STATUSES.has(status) || attempt >= this.maxAttempts) return undefined
    const asked = parseRetryAfter(retryAfter)
    const delay = asked ?? this.baseDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2)
    return waitedMs + delay <= this.maxDelayMs ? delay : undefined
  }
}

/** Retry-After in milliseconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when absent or invalid. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const date = Date.parse(text)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a whole number of at least 1`)
  return value
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be 0 or more`)
  return value
}
