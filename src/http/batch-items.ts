/**
 * Batch items are validated one by one against the contract's WrappedKeyRequest, so that one bad item
 * gets its own `invalid_request` in the results instead of failing the whole batch.
 */
import { Ajv, type ValidateFunction } from 'ajv'
import type { KeywrapError } from '../errors.js'
import type { EncryptionContext } from '../crypto/context.js'
import { resolveRefs, type Contract } from './openapi-contract.js'
import { invalidRequest } from './problem-replies.js'

export interface BatchItem {
  readonly wrappedKey: string
  readonly context?: EncryptionContext
}

export type BatchItemValidator = (item: unknown, index: number) => BatchItem | KeywrapError

export function batchItemValidator(contract: Contract): BatchItemValidator {
  const schema = resolveRefs(contract.document, { $ref: '#/components/schemas/WrappedKeyRequest' }) as object
  const validate: ValidateFunction = new Ajv({ allErrors: true, strict: false }).compile(schema)
  return (item, index) => (validate(item) ? (item as BatchItem) : invalidRequest(`/body/items/${index}`, validate.errors ?? []))
}
