/**
 * The pre-authentication limit: failed authentications are counted per client address over a window.
 * Past `max`, the address's requests with a token not verified before are refused with 429 at once,
 * without verifying anything (a forged signature costs a full verification).
 *
 * What the audit trail records (docs/security.md): every failed authentication up to the limit, one
 * entry each; the first 429 of the address in a window, one entry; the later ones are only counted,
 * and one summary entry with their number (`unrecorded`) is written when the window ends (or the
 * address is forgotten, the least recently seen past 10,000 addresses). An anonymous flood thus writes
 * at most `max` + 2 entries per address and window.
 */
import { LRUCache } from 'lru-cache'
import { KeywrapError } from '../errors.js'

export interface FailedAuthenticationLimit {
  readonly max: number
  readonly windowSeconds: number
}

/** The last request refused unrecorded, which the summary entry names. */
export interface UnrecordedRefusals<R> {
  readonly count: number
  readonly last: R
}

interface AddressWindow<R> {
  failures: number
  resetAt: number
  unrecorded: number
  last: R | undefined
}

const MAX_ADDRESSES = 10_000
const UNRECORDED = new WeakSet<KeywrapError>()

/** Whether a refusal is one of those counted, not recorded one by one. */
export function isUnrecordedRefusal(error: unknown): boolean {
  return error instanceof KeywrapError && UNRECORDED.has(error)
}

export class FailedAuthentications<R> {
  private readonly windows: LRUCache<string, AddressWindow<R>>
  private readonly windowMs: number
  private readonly sweeper: NodeJS.Timeout

  constructor(
    private readonly limit: FailedAuthenticationLimit,
    private readonly summarise: (address: string, unrecorded: UnrecordedRefusals<R>) => void,
  ) {
    this.windowMs = limit.windowSeconds * 1000
    this.windows = new LRUCache({ max: MAX_ADDRESSES, dispose: (window, address) => this.flush(address, window) })
    this.sweeper = setInterval(() => this.sweep(), Math.min(this.windowMs, 60_000))
    this.sweeper.unref()
  }

  /** A 429 if the address is over the limit (undefined otherwise); `describe` gives what a summary would name. */
  refusal(address: string, describe: () => R): KeywrapError | undefined {
    const window = this.current(address, false)
    if (!window || window.failures < this.limit.max) return undefined
    const retryAfterSeconds = Math.max(1, Math.ceil((window.resetAt - Date.now()) / 1000))
    const refusal = new KeywrapError('rate_limited', `Too many failed authentications from this address; try again in ${retryAfterSeconds} s.`, {
      retryAfterSeconds,
    })
    // The first refusal of the window is recorded like any other; the later ones are counted.
    if (window.failures > this.limit.max) {
      UNRECORDED.add(refusal)
      window.unrecorded++
      window.last = describe()
    }
    window.failures = this.limit.max + 1
    return refusal
  }

  failed(address: string): void {
    this.current(address, true)!.failures++
  }

  close(): void {
    clearInterval(this.sweeper)
    this.windows.clear()
  }

  private current(address: string, create: boolean): AddressWindow<R> | undefined {
    const now = Date.now()
    let window = this.windows.get(address)
    if (window && window.resetAt <= now) {
      // Deleting it writes its summary (dispose).
      this.windows.delete(address)
      window = undefined
    }
    if (!window && create) {
      window = { failures: 0, resetAt: now + this.windowMs, unrecorded: 0, last: undefined }
      this.windows.set(address, window)
    }
    return window
  }

  private sweep(): void {
    const now = Date.now()
    for (const [address, window] of this.windows.entries()) if (window.resetAt <= now) this.windows.delete(address)
  }

  private flush(address: string, window: AddressWindow<R>): void {
    if (window.unrecorded === 0 || window.last === undefined) return
    const unrecorded = { count: window.unrecorded, last: window.last }
    window.unrecorded = 0
    this.summarise(address, unrecorded)
  }
}
