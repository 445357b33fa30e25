/**
 * Runs a check at most once per interval: callers within the interval after a check settles get its
 * result, and callers while it runs share it. Keeps /readyz?deep=true from spending KMS quota.
 */
export class ProbeThrottle {
  private readonly check: () => Promise<void>
  private readonly intervalMs: number
  private readonly now: () => number
  private last: { promise: Promise<void>; settledAt: number | undefined } | undefined

  constructor(check: () => Promise<void>, intervalMs: number, now: () => number = Date.now) {
    this.check = check
    this.intervalMs = intervalMs
    this.now = now
  }

  run(): Promise<void> {
    const last = this.last
    if (last && (last.settledAt === undefined || this.now() - last.settledAt < this.intervalMs)) return last.promise
    const current: { promise: Promise<void>; settledAt: number | undefined } = { promise: Promise.resolve(), settledAt: undefined }
    const settle = () => {
      current.settledAt = this.now()
    }
    current.promise = this.check().then(settle, (error: unknown) => {
      settle()
      throw error
    })
    this.last = current
    return current.promise
  }
}
