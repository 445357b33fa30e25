/**
 * openapi.yaml is the contract, and the routes take their schemas from it: request validation and
 * response serialisation (which drops any undeclared field, a guard against leaks) use exactly what
 * the spec says, so the two cannot drift.
 */
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseYaml } from '../support/yaml.js'

export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url))

type Schema = Record<string, unknown>

export interface ContractOperation {
  readonly operationId: string
  readonly method: 'GET' | 'POST'
  /** The path as the spec writes it: /v1/keys/{alias}:unwrap */
  readonly path: string
  /** The same path in Fastify's router syntax. */
  readonly url: string
  readonly schema: {
    params?: Schema
    querystring?: Schema
    body?: Schema
    response: Record<string, Schema>
  }
}

export interface Contract {
  readonly text: string
  readonly document: Schema
  readonly operations: ReadonlyMap<string, ContractOperation>
}

export function loadContract(path: string = OPENAPI_PATH): Contract {
  const text = readFileSync(path, 'utf8')
  const document = snapshotOf(path, text) ?? (parseYaml(text) as Schema)
  const operations = new Map<string, ContractOperation>()
  const paths = document.paths as Record<string, Record<string, Schema>>
  for (const [specPath, methods] of Object.entries(paths)) {
    for (const [method, rawOperation] of Object.entries(methods)) {
      const operation = resolveRefs(document, rawOperation) as Schema
      const operationId = operation.operationId as string
      operations.set(operationId, {
        operationId,
        method: method.toUpperCase() as 'GET' | 'POST',
        path: specPath,
        url: toFastifyUrl(specPath),
        schema: routeSchema(operation),
      })
    }
  }
  return { text, document, operations }
}

/**
 * `npm run build` stores the parsed contract beside the compiled server's copy of openapi.yaml, stamped
 * with the SHA-256 of the text it was parsed from. Loading it spares a cold start the YAML parse
 * (loadContract ~85 → ~14 ms on Node 20); a stamp that does not match the YAML beside it (an edited
 * copy) is ignored, so the YAML stays the only source.
 */
interface ContractSnapshot {
  readonly yamlSha256: string
  readonly document: Schema
}

export const snapshotPathOf = (yamlPath: string) => `${yamlPath}.json`

export function writeContractSnapshot(path: string = OPENAPI_PATH): void {
  const text = readFileSync(path, 'utf8')
  const snapshot: ContractSnapshot = { yamlSha256: sha256(text), document: parseYaml(text) as Schema }
  writeFileSync(snapshotPathOf(path), JSON.stringify(snapshot))
}

function snapshotOf(path: string, text: string): Schema | undefined {
  let snapshot: ContractSnapshot
  try {
    snapshot = JSON.parse(readFileSync(snapshotPathOf(path), 'utf8')) as ContractSnapshot
  } catch {
    return undefined
  }
  return snapshot.yamlSha256 === sha256(text) ? snapshot.document : undefined
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

function routeSchema(operation: Schema): ContractOperation['schema'] {
  const schema: ContractOperation['schema'] = { response: {} }
  const parameters = (operation.parameters ?? []) as Schema[]
  const params = parameterSchema(parameters.filter((parameter) => parameter.in === 'path'))
  if (params) schema.params = params
  const querystring = parameterSchema(parameters.filter((parameter) => parameter.in === 'query'))
  if (querystring) schema.querystring = querystring
  const body = jsonSchemaOf(operation.requestBody)
  if (body) schema.body = body
  for (const [status, response] of Object.entries((operation.responses ?? {}) as Record<string, Schema>)) {
    const responseSchema = jsonSchemaOf(response)
    if (status.startsWith('2') && responseSchema) schema.response[status] = responseSchema
  }
  return schema
}

function parameterSchema(parameters: Schema[]): Schema | undefined {
  if (parameters.length === 0) return undefined
  return {
    type: 'object',
    additionalProperties: false,
    required: parameters.filter((parameter) => parameter.required).map((parameter) => parameter.name),
    properties: Object.fromEntries(parameters.map((parameter) => [parameter.name, parameter.schema])),
  }
}

function jsonSchemaOf(holder: unknown): Schema | undefined {
  const content = (holder as { content?: Record<string, { schema?: Schema }> } | undefined)?.content
  return content?.['application/json']?.schema
}

/**
 * /v1/keys/{alias}:unwrap → /v1/keys/:alias(^[^/:]+)::unwrap (a literal colon is written "::"). A
 * parameter never spans a colon, so /v1/keys/a:typo matches no route rather than GET /v1/keys/{alias}.
 */
export function toFastifyUrl(specPath: string): string {
  return specPath.replace(/\{(\w+)\}(:?)/g, (_, name: string, colon: string) => `:${name}(^[^/:]+)${colon ? '::' : ''}`)
}

/** Inlines local `#/components/...` references; the spec has no recursive schemas. */
export function resolveRefs(document: Schema, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveRefs(document, item))
  if (typeof value !== 'object' || value === null) return value
  const object = value as Schema
  if (typeof object.$ref === 'string') {
    const { $ref, ...siblings } = object
    const target = ($ref as string)
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((node, segment) => (node as Schema | undefined)?.[segment], document)
    if (target === undefined) throw new Error(`openapi.yaml: unresolved reference ${$ref as string}`)
    return { ...(resolveRefs(document, target) as Schema), ...(resolveRefs(document, siblings) as Schema) }
  }
  return Object.fromEntries(Object.entries(object).map(([key, inner]) => [key, resolveRefs(document, inner)]))
}
