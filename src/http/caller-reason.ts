/**
 * The reason a caller gives for a call (the x-keywrap-reason header): recorded in the call's audit
 * entries, and required by grants with `requireReason`. It is text a caller wrote that goes to the
 * audit trail, so it is held to a short line of printable ASCII.
 */
import type { FastifyRequest } from 'fastify'
import { KeywrapError } from '../errors.js'

export const REASON_HEADER = 'x-keywrap-reason'
export const MAX_REASON_LENGTH = 256
const REASON = new RegExp(`^[\\x20-\\x7e]{1,${MAX_REASON_LENGTH}}$`)
const POINTER = `/headers/${REASON_HEADER}`

/** Whether `value` is a reason keywrap accepts: 1 to MAX_REASON_LENGTH printable ASCII characters. */
export function isValidReason(value: string): boolean {
  return REASON.test(value)
}

/** The request's reason; undefined when it sent none; an invalid_request when the header is not a valid one. */
export function callerReasonOf(request: FastifyRequest): string | undefined | KeywrapError {
  const value = request.headers[REASON_HEADER]
  if (value === undefined) return undefined
  // Node joins repeated headers with ", ": two reasons would read as one.
  const sent = request.raw.rawHeaders.filter((name, index) => index % 2 === 0 && name.toLowerCase() === REASON_HEADER).length
  if (sent > 1 || typeof value !== 'string') return invalid('is sent more than once; send one reason')
  if (isValidReason(value)) return value
  if (value.length === 0) return invalid('is empty; send 1 to 256 printable ASCII characters, or leave the header out')
  if (value.length > MAX_REASON_LENGTH) return invalid(`is ${value.length} characters long; at most ${MAX_REASON_LENGTH} are allowed`)
  return invalid('holds characters other than printable ASCII (space to ~)')
}

function invalid(detail: string): KeywrapError {
  return new KeywrapError('invalid_request', `${POINTER} ${detail}`, { errors: [{ pointer: POINTER, detail }] })
}
