/**
 * The error catalogue. Every failure a caller can see has a stable `code` (clients switch on it), an
 * HTTP status and a fixed title. `detail` is written for the caller and never carries internals.
 */
import { truncate } from './support/truncate.js'

export const errorCatalogue = {
  invalid_request: { status: 400, title: 'The request is not valid.' },
  invalid_wrapped_key: { status: 400, title: 'The wrapped key is not in keywrap’s format.' },
  unauthenticated: { status: 401, title: 'A valid bearer token is required.' },
  forbidden: { status: 403, title: 'The caller is not allowed to do this.' },
  context_not_allowed: { status: 403, title: 'The caller’s grants do not allow this encryption context.' },
  reason_required: { status: 403, title: 'The caller’s grant requires a reason (the x-keywrap-reason header).' },
  key_not_found: { status: 404, title: 'No key has this alias.' },
  not_found: { status: 404, title: 'There is nothing at this path.' },
  method_not_allowed: { status: 405, title: 'This path does not accept this method.' },
  request_timeout: { status: 408, title: 'The request was not received in time.' },
  key_version_not_enabled: { status: 409, title: 'The key version is not enabled.' },
  key_version_destroyed: { status: 409, title: 'The key version is destroyed.' },
  payload_too_large: { status: 413, title: 'The request body is too large.' },
  unsupported_media_type: { status: 415, title: 'The request body must be application/json.' },
  cannot_unwrap: { status: 422, title: 'The wrapped key cannot be unwrapped.' },
  rate_limited: { status: 429, title: 'Too many requests from this caller; try again later.' },
  headers_too_large: { status: 431, title: 'The request header fields are too large.' },
  internal: { status: 500, title: 'The service failed to handle the request.' },
  provider_misconfigured: { status: 500, title: 'The key provider rejected the service’s request.' },
  provider_unavailable: { status: 503, title: 'The key provider is unavailable; try again.' },
  issuer_unavailable: { status: 503, title: 'The token issuer’s signing keys cannot be fetched; try again.' },
  cache_unavailable: { status: 503, title: 'The shared cache cannot be reached, so the purge cannot be confirmed; try again.' },
  audit_unavailable: { status: 503, title: 'The audit trail cannot be written; nothing was released.' },
  overloaded: { status: 503, title: 'keywrap is at capacity; try again after Retry-After.' },
} as const satisfies Record<string, { status: number; title: string }>

export type ErrorCode = keyof typeof errorCatalogue

export class KeywrapError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly detail: string | undefined
  /** Seconds a client should wait before retrying (503, 429). */
  readonly retryAfterSeconds: number | undefined
  /** Field-level validation errors (400). */
  readonly errors: readonly ProblemFieldError[] | undefined

  constructor(code: ErrorCode, detail?: string, options: { cause?: unknown; retryAfterSeconds?: number; errors?: readonly ProblemFieldError[] } = {}) {
    super(detail ?? errorCatalogue[code].title, { cause: options.cause })
    this.name = 'KeywrapError'
    this.code = code
    this.status = errorCatalogue[code].status
    this.detail = detail
    this.retryAfterSeconds = options.retryAfterSeconds
    this.errors = options.errors
  }
}

export interface ProblemFieldError {
  /** JSON pointer into the request (`/body/items/3/wrappedKey`). */
  readonly pointer: string
  readonly detail: string
}

const MAX_DETAIL = 1024

/** RFC 9457 problem details, as keywrap renders them. */
export interface Problem {
  type: string
  title: string
  status: number
  code: ErrorCode
  detail?: string
  requestId?: string
  errors?: readonly ProblemFieldError[]
}

export function toProblem(error: KeywrapError, requestId?: string): Problem {
  const problem: Problem = {
    type: `urn:keywrap:problem:${error.code}`,
    title: errorCatalogue[error.code].title,
    status: error.status,
    code: error.code,
  }
  // A detail may quote the request (a path, a pointer): bounded, so a reply stays small.
  if (error.detail !== undefined) problem.detail = truncate(error.detail, MAX_DETAIL)
  if (requestId !== undefined) problem.requestId = requestId
  if (error.errors !== undefined) problem.errors = error.errors
  return problem
}

export function isKeywrapError(error: unknown): error is KeywrapError {
  return error instanceof KeywrapError
}
