/**
 * The CLI's HTTP client of a running keywrap: GET /v1/keys/{alias} and POST :batchRewrap, with the
 * service's problems (RFC 9457) turned into ServiceErrors that say whether a retry may succeed and
 * when (Retry-After). Each request has a time limit, answer included: a service that stops answering
 * ends in a ServiceError "timeout" (no answer, so transient: a rewrap campaign retries it like a lost
 * connection) instead of a command that waits for ever.
 */
import { parseRetryAfter } from '../../client/src/retry-policy.js'
import type { ServiceTarget } from './service-target.js'

/**
 * Seconds a request may take by default (rewrap --timeout sets another). A :batchRewrap of up to
 * 1,000 keys, 64 at once, each a Decrypt and an Encrypt, is usually done in seconds; 30 s leaves room
 * for a slow provider, and still ends a hang.
 */
export const DEFAULT_TIMEOUT_SECONDS = 30

export interface KeyVersionDetails {
  readonly version: number
  readonly name: string
  readonly state: string
  readonly uses?: Readonly<Record<string, number>>
  readonly lastUsedAt?: string
}

export interface KeyDetails {
  readonly alias: string
  readonly provider: 'local' | 'gcp-kms'
  readonly uri: string
  readonly primaryVersion: number
  readonly versions: readonly KeyVersionDetails[]
  /** When the instance started counting the versions' uses. */
  readonly usesSince?: string
}

export interface ItemProblem {
  readonly code: string
  readonly detail: string
}

export type BatchRewrapResult = { readonly wrappedKey: string; readonly rewrapped: boolean } | { readonly error: ItemProblem }

export interface BatchRewrapItem {
  readonly wrappedKey: string
  readonly context?: unknown
}

/** Codes of item problems and whole-request failures that a later attempt may not have. */
// overloaded: the service's provider calls and their queue were full (KEYWRAP_PROVIDER_MAX_CONCURRENT
// and _QUEUED), e.g. while it still finishes the requests of a run that was killed.
const TRANSIENT_CODES = new Set([
  'rate_limited',
  'overloaded',
  'internal',
  'provider_unavailable',
  'issuer_unavailable',
  'cache_unavailable',
  'audit_unavailable',
])

export function isTransient(problem: ItemProblem): boolean {
  return TRANSIENT_CODES.has(problem.code)
}

export class ServiceError extends Error {
  constructor(
    readonly problem: ItemProblem,
    /** The HTTP status, or undefined when no answer came (connection refused or reset, or the time limit passed). */
    readonly status: number | undefined,
    /** Seconds the service asked to wait (Retry-After). */
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(`${problem.code}: ${problem.detail}`)
  }

  /** Whether the same request may succeed later: no answer, 429, or a 5xx. */
  get transient(): boolean {
    return this.status === undefined || this.status === 429 || this.status >= 500
  }
}

export class KeywrapClient {
  private readonly baseUrl: string
  private readonly token: string
  /** Sent as x-keywrap-reason with every call. */
  private readonly reason: string | undefined

  constructor(
    /** The service (an http(s) URL: serviceTarget() checks it), token and reason. */
    target: ServiceTarget,
    /** The time limit of each request, answer included. */
    private readonly timeoutSeconds: number = DEFAULT_TIMEOUT_SECONDS,
  ) {
    this.baseUrl = new URL(target.url).href.replace(/\/+$/, '')
    this.token = target.token
    this.reason = target.reason
  }

  getKey(alias: string): Promise<KeyDetails> {
    return this.request('GET', `/v1/keys/${encodeURIComponent(alias)}`) as Promise<KeyDetails>
  }

  async batchRewrap(alias: string, items: readonly BatchRewrapItem[]): Promise<BatchRewrapResult[]> {
    const body = (await this.request('POST', `/v1/keys/${encodeURIComponent(alias)}:batchRewrap`, { items })) as { results?: unknown }
    const results = body.results
    if (!Array.isArray(results) || results.length !== items.length) {
      throw new ServiceError(
        { code: 'invalid_response', detail: `the service answered ${Array.isArray(results) ? results.length : 'no'} results for ${items.length} items` },
        502,
        undefined,
      )
    }
    return results.map((result: any) =>
      result && typeof result.error === 'object' && result.error !== null
        ? { error: problemOf(result.error, 'item failed') }
        : { wrappedKey: String(result?.wrappedKey), rewrapped: result?.rewrapped === true },
    )
  }

  private async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const signal = AbortSignal.timeout(Math.ceil(this.timeoutSeconds * 1000))
    let response: Response
    let text: string
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...(this.reason !== undefined && { 'x-keywrap-reason': this.reason }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal,
      })
      text = await response.text()
    } catch (error) {
      if (signal.aborted) {
        throw new ServiceError({ code: 'timeout', detail: `${this.baseUrl}: no complete answer within ${this.timeoutSeconds} s` }, undefined, undefined)
      }
      const cause = (error as { cause?: { code?: string; message?: string } }).cause
      throw new ServiceError(
        { code: 'unreachable', detail: `${this.baseUrl}: ${cause?.code ?? cause?.message ?? (error as Error).message}` },
        undefined,
        undefined,
      )
    }
    let json: unknown
    try {
      json = text === '' ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    if (response.ok && json !== undefined) return json
    throw new ServiceError(
      problemOf(json, response.ok ? 'the answer is not JSON' : `HTTP ${response.status}`),
      response.ok ? 502 : response.status,
      retryAfterSeconds(response.headers.get('retry-after')),
    )
  }
}

/** Retry-After in seconds (the client package's reading of it); undefined when missing or invalid, and the caller backs off. */
function retryAfterSeconds(header: string | null): number | undefined {
  const milliseconds = parseRetryAfter(header)
  return milliseconds === undefined ? undefined : milliseconds / 1000
}

function problemOf(value: unknown, fallback: string): ItemProblem {
  const problem = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
  const code = typeof problem.code === 'string' ? problem.code : 'http_error'
  const detail = typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : fallback
  return { code, detail }
}
