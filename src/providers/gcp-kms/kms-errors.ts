/**
 * What a failed Cloud KMS call means for keywrap: whether to retry it, its gRPC status name for the
 * metrics, and the KeywrapError a caller sees. Reasons meant for operators (which key, which
 * permission) go to the log and never into a caller's problem detail.
 */
import { grpc } from 'google-gax'
import { isKeywrapError, KeywrapError } from '../../errors.js'
import { IntegrityError } from './integrity.js'
import type { FailureKind } from './retry.js'
import type { Logger } from '../../support/logger.js'

const { status } = grpc

export type KmsMethod = 'Encrypt' | 'Decrypt' | 'GetCryptoKey' | 'ListCryptoKeyVersions'

export interface FailureContext {
  readonly keyName: string
  readonly method: KmsMethod
  readonly logger?: Logger
}

/** Seconds a client should wait after an outage or a deadline, and after a quota refusal. */
const RETRY_AFTER_UNAVAILABLE = 1
const RETRY_AFTER_QUOTA = 5

export function grpcCodeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'number' && status[code] !== undefined ? code : undefined
}

/** The label for keywrap_provider_failures_total: a gRPC status name (DATA_LOSS for a failed CRC32C check) or a keywrap code. */
export function failureCodeOf(error: unknown): string {
  if (isIntegrityFailure(error)) return 'DATA_LOSS'
  const code = grpcCodeOf(error)
  if (code !== undefined) return status[code]!
  return isKeywrapError(error) ? error.code : 'UNKNOWN'
}

export function classifyFailure(error: unknown): FailureKind {
  if (isIntegrityFailure(error)) return 'integrity'
  const code = grpcCodeOf(error)
  return code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED ? 'transient' : 'final'
}

/**
 * A failed CRC32C check on either side: ours on the response, or Cloud KMS's on the request (it answers
 * INVALID_ARGUMENT naming the checksum field, meaning the request was damaged on its way).
 */
function isIntegrityFailure(error: unknown): boolean {
  if (error instanceof IntegrityError) return true
  return grpcCodeOf(error) === status.INVALID_ARGUMENT && /\bchecksum in field \w+_crc32c\b/.test(detailsOf(error))
}

export function toKeywrapError(error: unknown, context: FailureContext): KeywrapError {
  if (isKeywrapError(error)) return error
  const { method, logger } = context
  if (isIntegrityFailure(error)) {
    logger?.warn(failureLog(error, context), `Cloud KMS ${method} failed its CRC32C integrity check on every attempt`)
    return new KeywrapError('provider_unavailable', undefined, { cause: error, retryAfterSeconds: RETRY_AFTER_UNAVAILABLE })
  }
  const code = grpcCodeOf(error)
  switch (code) {
    case status.FAILED_PRECONDITION:
      return versionStateError(error)
    case status.INVALID_ARGUMENT:
      if (method === 'Decrypt') return new KeywrapError('cannot_unwrap', undefined, { cause: error })
      if (/field additional_authenticated_data must have length/.test(detailsOf(error))) {
        return new KeywrapError('invalid_request', 'The encryption context is too large: Cloud KMS takes at most 64 KiB of it, encoded.', { cause: error })
      }
      return misconfigured(error, context, 'Cloud KMS refused the request as invalid; check the configured key name')
    case status.PERMISSION_DENIED:
      return misconfigured(error, context, `grant keywrap's service account ${roleFor(method)} on ${context.keyName}`)
    case status.NOT_FOUND:
      return misconfigured(error, context, `the CryptoKey ${context.keyName} does not exist; check its project, location, key ring and name`)
    case status.UNAUTHENTICATED:
      return misconfigured(error, context, 'keywrap has no valid Google credentials (Application Default Credentials)')
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
      return new KeywrapError('provider_unavailable', undefined, { cause: error, retryAfterSeconds: RETRY_AFTER_UNAVAILABLE })
    case status.RESOURCE_EXHAUSTED:
      logger?.warn(failureLog(error, context), `Cloud KMS ${method} refused: quota exhausted`)
      return new KeywrapError('provider_unavailable', undefined, { cause: error, retryAfterSeconds: RETRY_AFTER_QUOTA })
    case undefined:
      return misconfigured(error, context, 'the Cloud KMS client could not make the call')
    default:
      logger?.error(failureLog(error, context), `Cloud KMS ${method} failed`)
      return new KeywrapError('provider_unavailable', undefined, { cause: error, retryAfterSeconds: RETRY_AFTER_UNAVAILABLE })
  }
}

/** The operator-facing account of a failure: names and status only, never request or response bytes. */
export function describeFailure(error: unknown): string {
  const code = grpcCodeOf(error)
  const reason = detailsOf(error) || (error instanceof Error ? error.message : String(error))
  return code === undefined ? reason : `${status[code]}: ${reason}`
}

function versionStateError(error: unknown): KeywrapError {
  // Cloud KMS words it "…/cryptoKeyVersions/3 is not enabled, current state is: DISABLED."
  const details = detailsOf(error)
  const match = /\/cryptoKeyVersions\/(\d+) is not enabled, current state is: ([A-Z_]+)/.exec(details)
  const destroyed = /\bDESTROYED\b/.test(details)
  const code = destroyed ? 'key_version_destroyed' : 'key_version_not_enabled'
  const detail = match ? (destroyed ? `Key version ${match[1]} is destroyed.` : `Key version ${match[1]} is ${match[2]}.`) : undefined
  return new KeywrapError(code, detail, { cause: error })
}

function misconfigured(error: unknown, context: FailureContext, action: string): KeywrapError {
  context.logger?.error({ ...failureLog(error, context), action }, `Cloud KMS refused keywrap's ${context.method} on ${context.keyName}: ${action}`)
  return new KeywrapError('provider_misconfigured', undefined, { cause: error })
}

function roleFor(method: KmsMethod): string {
  return method === 'Encrypt' || method === 'Decrypt'
    ? 'roles/cloudkms.cryptoKeyEncrypterDecrypter'
    : 'roles/cloudkms.viewer (cloudkms.cryptoKeys.get, cloudkms.cryptoKeyVersions.list)'
}

function failureLog(error: unknown, context: FailureContext): object {
  return { provider: 'gcp-kms', keyName: context.keyName, method: context.method, status: failureCodeOf(error), reason: describeFailure(error) }
}

function detailsOf(error: unknown): string {
  const details = (error as { details?: unknown } | null)?.details
  return typeof details === 'string' ? details : ''
}
