/**
 * Batch items are validated one by one against the contract's WrappedKeyRequest, so that one bad item
 * gets its own `invalid_request` in the results instead of failing the whole batch.
 */
import { createRequire } from 'node:module'
import type { Options, ValidateFunction } from 'ajv'
import type { KeywrapError } from '../errors.js'
import type { EncryptionContext } from '../crypto/context.js'
import { resolveRefs, type Contract } from './openapi-contract.js'
import { invalidRequest } from './problem-replies.js'

export interface BatchItem {
  readonly wrappedKey: string
  readonly context?: EncryptionContext
}

export type BatchItemValidator = (item: unknown, index: number) => BatchItem | KeywrapError

// The contract's schemas are checked against OpenAPI 3.1 by its tests; checking this one against the
// JSON Schema meta-schema again would cost ~50 ms of every cold start.
export const BATCH_ITEM_AJV_OPTIONS: Options = { allErrors: true, strict: false, validateSchema: false, meta: false }

export const batchItemSchema = (contract: Contract) => resolveRefs(contract.document, { $ref: '#/components/schemas/WrappedKeyRequest' }) as object

/**
 * `precompiled`: the validator `npm run build` generated for this contract (precompiled-schemas.ts);
 * without it the schema is compiled here, loading Ajv only then.
 */
export function batchItemValidator(contract: Contract, precompiled?: ValidateFunction): BatchItemValidator {
  const validate: ValidateFunction = precompiled ?? compile(batchItemSchema(contract))
  return (item, index) => (validate(item) ? (item as BatchItem) : invalidRequest(`/body/items/${index}`, validate.errors ?? []))
}

function compile(schema: object): ValidateFunction {
  const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv')
  return new Ajv(BATCH_ITEM_AJV_OPTIONS).compile(schema)
}
