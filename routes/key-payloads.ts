/** Conversions between the JSON bodies and the key service's inputs and results. */
import type { FastifyRequest } from 'fastify'
import type { EncryptionContext } from '../src/crypto/context.js'
import { decodeBase64Strict } from '../src/crypto/base64.js'
import { KeywrapError, toProblem, type Problem } from '../src/errors.js'
import type { BatchItemValidator } from '../src/http/batch-items.js'
import type { RewrapResult, UnwrapResult, WrappedKeyInput } from '../src/keys/key-service.js'

export interface AliasParams {
  alias: string
}

export interface WrappedKeyBody {
  wrappedKey: string
  context?: EncryptionContext
}

/**
 * The key bytes, or the invalid_request error that describes why there are none. Their length is the
 * schema's to check; what it cannot see is a non-canonical spelling (padding bits that are not zero).
 */
export function decodeKeyBytes(text: string, pointer: string): Buffer | KeywrapError {
  const bytes = decodeBase64Strict(text)
  if (!bytes) {
    const detail = 'must be canonical base64 (with padding)'
    return new KeywrapError('invalid_request', `${pointer} ${detail}`, { errors: [{ pointer, detail }] })
  }
  return bytes
}

export function toWrappedKeyInput(body: WrappedKeyBody): WrappedKeyInput {
  return body.context === undefined ? { wrappedKey: body.wrappedKey } : { wrappedKey: body.wrappedKey, context: body.context }
}

export function unwrapPayload(result: UnwrapResult) {
  return { plaintext: result.plaintext.toString('base64'), keyVersion: result.keyVersion, primary: result.primary }
}

export function rewrapPayload(result: RewrapResult) {
  return { wrappedKey: result.wrappedKey, keyVersion: result.keyVersion, rewrapped: result.rewrapped }
}

/** The items of a batch body, each checked on its own: an invalid one becomes its error, in place. */
export function batchInputs(items: readonly unknown[], validate: BatchItemValidator): (WrappedKeyInput | KeywrapError)[] {
  return items.map((item, index) => {
    const checked = validate(item, index)
    return checked instanceof KeywrapError ? checked : toWrappedKeyInput(checked)
  })
}

/** A batch result: the item's payload, or its problem (one bad item never fails the others). */
export function batchResult<R, P>(request: FastifyRequest, result: R | KeywrapError, payload: (result: R) => P): P | { error: Problem } {
  return result instanceof KeywrapError ? { error: toProblem(result, request.id) } : payload(result)
}
