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
  // The contract's schemas are checked against OpenAPI 3.1 by its tests; checking this one against the
  // JSON Schema meta-schema again would cost ~50 ms of every cold start.
  const validate: ValidateFunction = new Ajv({ allErrors: true, strict: false, validateSchema: false, meta: false }).compile(schema)
  return (item, index) => (validate(item) ? (item as BatchItem) : invalidRequest(`/body/items/${index}`, validate.errors ?? []))
}
