/**
 * Route schemas compiled at build time. `npm run build` generates the code of every route's Ajv
 * validator (params, querystring, body) and fast-json-stringify serializer (2xx responses), and of the
 * batch-item validator, into dist/schemas/, stamped with the SHA-256 of the openapi.yaml text they
 * were generated from. The compiled server hands them to Fastify (its schemaController's
 * compilersFactory, in the restore mode of Fastify's standalone compilers) when the stamp matches the
 * contract it loaded, so a start compiles no schema and never loads Ajv itself, only the small
 * runtime helpers the generated code requires. Anywhere else (tests and `npm start` from src/, an
 * edited openapi.yaml) the schemas are compiled at start, as they always were.
 */
// Measured: compiled start → /readyz 200, median of 15, 767 and 660 ms (1.92×, 2.09× bare Fastify) → 501 and 542 ms (1.59×, 1.60×).
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ValidateFunction } from 'ajv'
import type { FastifyServerOptions } from 'fastify'
import type { Contract } from './openapi-contract.js'

/** Beside the compiled server's copy of openapi.yaml: dist/schemas (from src/, a directory that does not exist). */
export const PRECOMPILED_SCHEMAS_DIR = fileURLToPath(new URL('../../schemas', import.meta.url))
const MANIFEST = 'manifest.json'

export type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
type ValidatorFactory = NonNullable<CompilersFactory['buildValidator']>
type SerializerFactory = NonNullable<CompilersFactory['buildSerializer']>

/** What Fastify passes a validator or serializer compiler for one schema of one route. */
export interface RouteSchemaDefinition {
  readonly schema?: unknown
  readonly method?: string
  readonly url?: string
  readonly httpPart?: string
  readonly httpStatus?: string
  readonly contentType?: string
}

interface Manifest {
  readonly yamlSha256: string
  /** Route schema key (keyOf) → file in the directory. */
  readonly validators: Record<string, string>
  readonly serializers: Record<string, string>
  readonly batchItem: string
}

export interface PrecompiledSchemas {
  readonly compilersFactory: CompilersFactory
  readonly batchItem: ValidateFunction
}

const require = createRequire(import.meta.url)
// Fastify's own dependencies (the standalone compilers, and the runtime ones a missing schema falls back to).
const requireFromFastify = () => createRequire(require.resolve('fastify'))

/** One route schema, as named in the manifest: "POST /v1/keys/:alias(^[^/:]+)::unwrap body". */
export const keyOf = (route: RouteSchemaDefinition) =>
  [route.method, route.url, route.httpPart ?? route.httpStatus, route.contentType].filter((part) => part !== undefined).join(' ')

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

/**
 * The compilers that restore what `npm run build` generated for this contract, or undefined when
 * there is none or it was generated from another text of openapi.yaml. This is the read mode of
 * @fastify/ajv-compiler/standalone and @fastify/fast-json-stringify-compiler/standalone written out:
 * requiring those modules would load Ajv and fast-json-stringify's compiler, what this is here to spare.
 */
export function precompiledSchemas(contract: Contract, dir: string = PRECOMPILED_SCHEMAS_DIR): PrecompiledSchemas | undefined {
  let manifest: Manifest
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest
  } catch {
    return undefined
  }
  if (manifest.yamlSha256 !== sha256(contract.text)) return undefined
  const restore = (file: string) => require(join(dir, file)) as never

  // A schema the build did not see (none today: every schema comes from the contract) is compiled as
  // Fastify compiles it when given no compilers, by the module named.
  type Factory = (externalSchemas: unknown, options: unknown) => (route: RouteSchemaDefinition) => unknown
  const restoring =
    (files: Record<string, string>, runtimeCompilers: string): Factory =>
    (externalSchemas, options) => {
      let runtime: ReturnType<Factory> | undefined
      return (route) => {
        const file = files[keyOf(route)]
        if (file) return restore(file)
        runtime ??= (requireFromFastify()(runtimeCompilers) as () => Factory)()(externalSchemas, options)
        return runtime(route)
      }
    }
  const buildValidator = restoring(manifest.validators, '@fastify/ajv-compiler') as ValidatorFactory
  const buildSerializer = restoring(manifest.serializers, '@fastify/fast-json-stringify-compiler') as SerializerFactory
  return { compilersFactory: { buildValidator, buildSerializer }, batchItem: restore(manifest.batchItem) }
}

/** Registers every route of the contract, with its schemas, on a server of its own built with these compilers. */
export async function compileRouteSchemas(contract: Contract, compilersFactory: CompilersFactory): Promise<void> {
  const [{ default: Fastify }, { default: routes }, { AJV_OPTIONS }] = await Promise.all([
    import('fastify'),
    import('../../routes/index.js'),
    import('../app.js'),
  ])
  // A copy: Ajv's standalone compiler adds its code option to the options it is given.
  const app = Fastify({ ajv: { ...AJV_OPTIONS, customOptions: { ...AJV_OPTIONS.customOptions } }, schemaController: { compilersFactory } })
  // The handlers are made, never called: they need none of the services.
  await app.register(routes, { contract, services: {} as never })
  await app.ready()
  await app.close()
}

/**
 * `npm run build`: the code of every route schema's validator and serializer, and of the batch-item
 * validator, written to `dir` with a manifest stamped with the SHA-256 of the contract's text.
 */
export async function writePrecompiledSchemas(contract: Contract, dir: string = PRECOMPILED_SCHEMAS_DIR): Promise<void> {
  const { batchItemSchema, BATCH_ITEM_AJV_OPTIONS } = await import('./batch-items.js')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const operationIds = new Map([...contract.operations.values()].map((operation) => [operation.url, operation.operationId]))
  const store = (table: Record<string, string>, route: RouteSchemaDefinition, code: string) => {
    const part = route.httpPart ?? `response-${route.httpStatus}`
    const name = [operationIds.get(route.url ?? '') ?? `route-${Object.keys(table).length}`, route.method?.toLowerCase(), part].join('.')
    const file = `${name}${route.contentType ? `.${Object.keys(table).length}` : ''}.cjs`
    writeFileSync(join(dir, file), code)
    table[keyOf(route)] = file
  }
  const validators: Record<string, string> = {}
  const serializers: Record<string, string> = {}
  const fastifyRequire = requireFromFastify()
  const StandaloneValidator = fastifyRequire('@fastify/ajv-compiler/standalone') as (options: object) => ValidatorFactory
  const { StandaloneSerializer } = fastifyRequire('@fastify/fast-json-stringify-compiler/standalone') as {
    StandaloneSerializer: (options: object) => SerializerFactory
  }
  const serializerFactory = StandaloneSerializer({
    readMode: false,
    storeFunction: (route: RouteSchemaDefinition, code: string) => store(serializers, route, code),
  })
  await compileRouteSchemas(contract, {
    buildValidator: StandaloneValidator({ readMode: false, storeFunction: (route: RouteSchemaDefinition, code: string) => store(validators, route, code) }),
    // The batch responses' anyOf needs a validator at run time: its Ajv code is generated inline, or
    // the serializer would construct an Ajv at start.
    buildSerializer: (externalSchemas, options) => serializerFactory(externalSchemas, { ...options, inlineValidators: true } as never),
  })

  const { Ajv } = require('ajv') as typeof import('ajv')
  const standaloneCode = (require('ajv/dist/standalone') as { default: (ajv: InstanceType<typeof Ajv>, validate: ValidateFunction) => string }).default
  const ajv = new Ajv({ ...BATCH_ITEM_AJV_OPTIONS, code: { source: true } })
  writeFileSync(join(dir, 'batch-item.cjs'), standaloneCode(ajv, ajv.compile(batchItemSchema(contract))))

  const manifest: Manifest = { yamlSha256: sha256(contract.text), validators, serializers, batchItem: 'batch-item.cjs' }
  writeFileSync(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`)
}
