/**
 * Batch items are validated one by one against the contract's WrappedKeyRequest, so that one bad item
 * gets its own `invalid_request` in the results instead of failing the whole batch.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { KeywrapError } from '../errors.js'
import type { EncryptionContext } from '../crypto/context.js'
import { resolveRefs, type Contract } from './openapi-contract.js'

export interface BatchItem {
  readonly wrappedKey: string
  readonly context?: EncryptionContext
}

export type BatchItemValidator = (item: unknown, index: number) => BatchItem | KeywrapError

export function batchItemValidator(contract: Contract): BatchItemValidator {
  const schema = resolveRefs(contract.document, { $ref: '#/components/schemas/WrappedKeyRequest' }) as object
  const validate: ValidateFunction = new Ajv({ allErrors: true, strict: false }).compile(schema)
  return (item, index) => {
    if (validate(item)) return item as BatchItem
    const errors = (validate.errors ?? []).map((issue: ErrorObject) => ({
      pointer: `/body/items/${index}${issue.instancePath}${missingProperty(issue.params)}`,
      detail: issue.keyword === 'additionalProperties' ? 'is not a known field' : issue.keyword === 'required' ? 'is required' : (issue.message ?? 'is not valid'),
    }))
    return new KeywrapError('invalid_request', errors.map((e) => `${e.pointer} ${e.detail}`).join('; '), { errors })
  }
}

function missingProperty(params: Record<string, unknown>): string {
  const name = params.missingProperty ?? params.additionalProperty ?? params.propertyName
  return typeof name === 'string' ? `/${name}` : ''
}
