/**
 * Checks an HTTP response against openapi.yaml: the status is one the operation declares, the media
 * type is the declared one, and the body validates against the declared schema.
 */
import assert from 'node:assert/strict'
import { Ajv, type ValidateFunction } from 'ajv'
import { loadContract, resolveRefs } from '../../src/http/openapi-contract.js'

const contract = loadContract()
const ajv = new Ajv({ strict: false, allErrors: true })
const validators = new Map<string, ValidateFunction>()

interface Responses {
  [status: string]: { content?: Record<string, { schema?: object }> }
}

function responsesOf(operationId: string): Responses {
  for (const methods of Object.values(contract.document.paths as Record<string, Record<string, Record<string, unknown>>>)) {
    for (const operation of Object.values(methods)) {
      if (operation.operationId === operationId) return resolveRefs(contract.document, operation.responses) as Responses
    }
  }
  throw new Error(`openapi.yaml has no operation ${operationId}`)
}

export interface CheckedResponse {
  statusCode: number
  headers: Record<string, unknown>
  body: string
}

export function assertMatchesContract(operationId: string, response: CheckedResponse): void {
  const declared = responsesOf(operationId)[String(response.statusCode)]
  assert.ok(declared, `${operationId}: status ${response.statusCode} is not declared in openapi.yaml (body: ${response.body})`)
  const mediaTypes = Object.keys(declared.content ?? {})
  if (mediaTypes.length === 0) return
  const contentType = String(response.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
  assert.ok(mediaTypes.includes(contentType), `${operationId} ${response.statusCode}: content-type ${contentType} is not one of ${mediaTypes.join(', ')}`)
  const schema = declared.content![contentType]!.schema
  if (!schema || !contentType.includes('json')) return
  const key = `${operationId} ${response.statusCode} ${contentType}`
  let validate = validators.get(key)
  if (!validate) {
    validate = ajv.compile(schema)
    validators.set(key, validate)
  }
  const body: unknown = JSON.parse(response.body)
  assert.ok(validate(body), `${key}: body does not match openapi.yaml: ${ajv.errorsText(validate.errors)}\n${response.body}`)
}
