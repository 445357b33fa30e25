/**
 * The key service over HTTP: one method per key operation of openapi.yaml, typed from it, with a
 * bearer token (a string, or a function asked before every attempt), a timeout per attempt, retries
 * of 429 and 503 (see retry-policy.ts), and every failure as a KeywrapError.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { KeywrapError, type Problem } from './keywrap-error.js'
import type { components } from './openapi-types.js'
import { RetryPolicy, type RetryOptions } from './retry-policy.js'

type Schemas = components['schemas']
export type EncryptionContext = Schemas['Context']
export type GenerateDataKeyRequest = Schemas['GenerateDataKeyRequest']
export type GenerateDataKeyResponse = Schemas['GenerateDataKeyResponse']
export type WrapRequest = Schemas['WrapRequest']
export type WrapResponse = Schemas['WrapResponse']
export type WrappedKeyRequest = Schemas['WrappedKeyRequest']
export type UnwrapResponse = Schemas['UnwrapResponse']
export type RewrapResponse = Schemas['RewrapResponse']
export type BatchRequest = Schemas['BatchRequest']
export type BatchUnwrapResponse = Schemas['BatchUnwrapResponse']
export type BatchRewrapResponse = Schemas['BatchRewrapResponse']
export type PurgeCacheResponse = Schemas['PurgeCacheResponse']
export type KeyDetails = Schemas['KeyDetails']
export type KeyList = Schemas['KeyList']

/** A bearer token, or a function that returns a current one (it should cache: it is called before every attempt). */
export type TokenSource = string | (() => string | Promise<string>)

export interface KeywrapClientOptions {
  /** Where the service listens, e.g. `https://keywrap-abc-ew.a.run.app` (a path prefix is kept). */
  baseUrl: string
  token: TokenSource
  /** Time allowed for one attempt, answer body included (default 10,000 ms). */
  timeoutMs?: number
  /** Retries of 429 and 503; false for none. */
  retry?: RetryOptions | false
  /**
   * Why this client's calls are made (a job, a ticket), sent as `x-keywrap-reason` with each call:
   * keywrap records it in their audit entries, and grants with `requireReason` ask for it. 1 to 256
   * printable ASCII characters.
   */
  reason?: string
}

const REASON = /^[\x20-\x7e]{1,256}$/

const USER_AGENT = 'keywrap-client/0.1.0'

/** How long one attempt may take when `timeoutMs` is not given. */
export const DEFAULT_TIMEOUT_MS = 10_000

export class KeywrapClient {
  readonly #baseUrl: string
  readonly #token: TokenSource
  readonly #timeoutMs: number
  readonly #retry: RetryPolicy
  readonly #reason: string | undefined

  constructor(options: KeywrapClientOptions) {
    const url = new URL(options.baseUrl)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`baseUrl must be http or https, not ${url.protocol}`)
    this.#baseUrl = url.href.replace(/\/+$/, '')
    if (typeof options.token !== 'function' && (typeof options.token !== 'string' || options.token === '')) {
      throw new TypeError('token must be a non-empty string or a function returning one')
    }
    this.#token = options.token
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    if (!(this.#timeoutMs > 0)) throw new RangeError('timeoutMs must be more than 0')
    this.#retry = new RetryPolicy(options.retry)
    if (options.reason !== undefined && (typeof options.reason !== 'string' || !REASON.test(options.reason))) {
      throw new TypeError('reason must be 1 to 256 printable ASCII characters')
    }
    this.#reason = options.reason
  }

  generateDataKey(alias: string, body: GenerateDataKeyRequest = {}): Promise<GenerateDataKeyResponse> {
    return this.#call('POST', `${keyPath(alias)}:generateDataKey`, body)
  }

  wrap(alias: string, body: WrapRequest): Promise<WrapResponse> {
    return this.#call('POST', `${keyPath(alias)}:wrap`, body)
  }

  unwrap(alias: string, body: WrappedKeyRequest): Promise<UnwrapResponse> {
    return this.#call('POST', `${keyPath(alias)}:unwrap`, body)
  }

  rewrap(alias: string, body: WrappedKeyRequest): Promise<RewrapResponse> {
    return this.#call('POST', `${keyPath(alias)}:rewrap`, body)
  }

  batchUnwrap(alias: string, body: BatchRequest): Promise<BatchUnwrapResponse> {
    return this.#call('POST', `${keyPath(alias)}:batchUnwrap`, body)
  }

  batchRewrap(alias: string, body: BatchRequest): Promise<BatchRewrapResponse> {
    return this.#call('POST', `${keyPath(alias)}:batchRewrap`, body)
  }

  purgeCache(alias: string): Promise<PurgeCacheResponse> {
    return this.#call('POST', `${keyPath(alias)}:purgeCache`, {})
  }

  getKey(alias: string): Promise<KeyDetails> {
    return this.#call('GET', keyPath(alias))
  }

  listKeys(): Promise<KeyList> {
    return this.#call('GET', '/v1/keys')
  }

  async #call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    let waitedMs = 0
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { authorization: `Bearer ${await this.#currentToken()}`, accept: 'application/json', 'user-agent': USER_AGENT }
      if (payload !== undefined) headers['content-type'] = 'application/json'
      if (this.#reason !== undefined) headers['x-keywrap-reason'] = this.#reason
      const signal = AbortSignal.timeout(this.#timeoutMs)
      try {
        const response = await fetch(`${this.#baseUrl}${path}`, { method, headers, body: payload, signal })
        if (response.ok) return (await readJson(response)) as T
        const failure = await problemError(response)
        const delay = this.#retry.delayAfter(attempt, response.status, response.headers.get('retry-after'), waitedMs)
        if (delay === undefined) throw failure
        await sleep(delay)
        waitedMs += delay
      } catch (error) {
        throw asKeywrapError(error, signal, `${method} ${path}`)
      }
    }
  }

  async #currentToken(): Promise<string> {
    if (typeof this.#token === 'string') return this.#token
    let token: string
    try {
      token = await this.#token()
    } catch (error) {
      throw new KeywrapError('token_unavailable', { detail: error instanceof Error ? error.message : String(error), cause: error })
    }
    if (typeof token !== 'string' || token === '') throw new KeywrapError('token_unavailable', { detail: 'the token function returned no token' })
    return token
  }
}

function keyPath(alias: string): string {
  return `/v1/keys/${encodeURIComponent(alias)}`
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text()
  try {
    return JSON.parse(text)
  } catch {
    throw new KeywrapError('unexpected_response', {
      status: response.status,
      detail: 'the answer is not JSON',
      requestId: response.headers.get('x-request-id') ?? undefined,
    })
  }
}

/** The problem details of a failed answer; a body that is not one (a proxy's page) still gives status and request id. */
async function problemError(response: Response): Promise<KeywrapError> {
  const headerRequestId = response.headers.get('x-request-id') ?? undefined
  let problem: Problem | undefined
  try {
    const parsed = JSON.parse(await response.text()) as Partial<Problem>
    if (parsed && typeof parsed === 'object' && typeof parsed.code === 'string') problem = parsed as Problem
  } catch {
    // not problem details
  }
  if (!problem)
    return new KeywrapError('unexpected_response', {
      status: response.status,
      detail: `HTTP ${response.status} ${response.statusText}`.trim(),
      requestId: headerRequestId,
    })
  return new KeywrapError(problem.code, {
    status: response.status,
    detail: problem.detail ?? problem.title,
    requestId: problem.requestId ?? headerRequestId,
    problem,
  })
}

function asKeywrapError(error: unknown, signal: AbortSignal, what: string): KeywrapError {
  if (error instanceof KeywrapError) return error
  if (signal.aborted) return new KeywrapError('timeout', { detail: `${what}: no complete answer within the timeout`, cause: error })
  const reason = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error)
  return new KeywrapError('network_error', { detail: `${what}: ${reason}`, cause: error })
}
