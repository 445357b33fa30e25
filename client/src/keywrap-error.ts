/** Every failure the client reports: the service's problem details, or what happened on the way. */
import type { components } from './openapi-types.js'

export type Problem = components['schemas']['Problem']

/**
 * The service's codes (openapi.yaml's Problem.code), and the client's own:
 * - `cannot_decrypt`: an envelope that is not intact, or not for this alias and context;
 * - `timeout`, `network_error`: no answer from the service;
 * - `unexpected_response`: an answer that is not the service's (a proxy's error page, a non-JSON body);
 * - `token_unavailable`: the token function failed.
 */
export type KeywrapErrorCode = Problem['code'] | 'cannot_decrypt' | 'timeout' | 'network_error' | 'unexpected_response' | 'token_unavailable'

export interface KeywrapErrorFields {
  /** The HTTP status, when the service answered. */
  status?: number
  detail?: string
  requestId?: string
  problem?: Problem
  cause?: unknown
}

export class KeywrapError extends Error {
  override readonly name = 'KeywrapError'
  readonly code: KeywrapErrorCode
  readonly status: number | undefined
  readonly detail: string | undefined
  readonly requestId: string | undefined
  /** The problem details as the service sent them. */
  readonly problem: Problem | undefined

  constructor(code: KeywrapErrorCode, fields: KeywrapErrorFields = {}) {
    const where = fields.requestId ? ` (request ${fields.requestId})` : ''
    super(`${code}${fields.status ? ` ${fields.status}` : ''}${fields.detail ? `: ${fields.detail}` : ''}${where}`, { cause: fields.cause })
    this.code = code
    this.status = fields.status
    this.detail = fields.detail
    this.requestId = fields.requestId
    this.problem = fields.problem
  }
}

/** The one answer to every envelope that does not decrypt: nothing says which check failed. */
export function cannotDecrypt(detail = 'the envelope is not intact, or not for this key and context', fields: KeywrapErrorFields = {}): KeywrapError {
  return new KeywrapError('cannot_decrypt', { ...fields, detail })
}
