/**
 * The route schemas `npm run build` precompiles (src/http/precompiled-schemas.ts) behave exactly as
 * the ones Fastify compiles at start, and are used only for the contract text they were built from.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDependencies } from '../../src/app.js'
import { loadDevIssuer, mintDevToken } from '../../src/auth/dev-issuer.js'
import { batchItemValidator } from '../../src/http/batch-items.js'
import { composeDependencies } from '../../src/compose.js'
import { loadConfig } from '../../src/config/load-config.js'
import { loadContract } from '../../src/http/openapi-contract.js'
import {
  compileRouteSchemas,
  keyOf,
  precompiledSchemas,
  writePrecompiledSchemas,
  type CompilersFactory,
  type RouteSchemaDefinition,
} from '../../src/http/precompiled-schemas.js'
import { REPO_ROOT } from '../support/processes.js'
import { RecordingAuditSink } from '../support/recording-audit-sink.js'

const contract = loadContract()
const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'))

type Compiled = (data: unknown) => unknown

/** Every validator and serializer a server of the contract's routes gets from these compilers, by route schema. */
async function compiledBy(factory: CompilersFactory): Promise<{ validators: Map<string, Compiled>; serializers: Map<string, Compiled> }> {
  const validators = new Map<string, Compiled>()
  const serializers = new Map<string, Compiled>()
  const recording =
    (build: unknown, table: Map<string, Compiled>) =>
    (...args: unknown[]) => {
      const compile = (build as (...args: unknown[]) => (route: RouteSchemaDefinition) => unknown)(...args)
      return (route: RouteSchemaDefinition) => {
        const compiled = compile(route) as Compiled
        table.set(keyOf(route), compiled)
        return compiled
      }
    }
  await compileRouteSchemas(contract, {
    buildValidator: recording(factory.buildValidator, validators) as never,
    buildSerializer: recording(factory.buildSerializer, serializers) as never,
  })
  return { validators, serializers }
}

/** Fastify's own compilers, as it makes them when given none. */
const runtimeFactory = (): CompilersFactory => ({
  buildValidator: fastifyRequire('@fastify/ajv-compiler')(),
  buildSerializer: fastifyRequire('@fastify/fast-json-stringify-compiler')(),
})

const WRAPPED = 'kw1.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const tooLargeContext = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']))

/** Bodies, params and querystrings, valid for some route and invalid for others; each is given to every validator. */
const REQUESTS: unknown[] = [
  null,
  'text',
  42,
  [],
  {},
  { alias: 'default' },
  { alias: 'Not An Alias!' },
  { alias: 'default', extra: '1' },
  { deep: 'true' },
  { deep: 'yes' },
  { deep: 'false', extra: '1' },
  { bytes: 16, includePlaintext: false, context: { tenant: 'a' } },
  { bytes: 17, includePlaintext: 'no', context: { '': 'x', a: 1 } },
  { plaintext: 'AAAAAAAAAAAAAAAAAAAAAA==' },
  { plaintext: 'not base64!', context: tooLargeContext },
  { plaintext: 'AAAA', context: { a: 'b' }, extra: true },
  { wrappedKey: WRAPPED },
  { wrappedKey: '', context: [] },
  { wrappedKey: WRAPPED, context: tooLargeContext },
  { items: [{ wrappedKey: WRAPPED }, 'x', { wrappedKey: 1 }] },
  { items: [] },
  { items: 'x', extra: 1 },
]

const problem = { type: 'urn:keywrap:problem:invalid_request', title: 'Bad', status: 400, code: 'invalid_request', detail: 'd', leaked: 'secret' }
/** Replies, each with an undeclared field the serializers must drop; each is given to every serializer. */
const RESPONSES: unknown[] = [
  {},
  { wrappedKey: WRAPPED, keyVersion: 'local://default/versions/1', plaintext: 'AAAA', leaked: 'secret' },
  { wrappedKey: WRAPPED, keyVersion: 'local://default/versions/1', leaked: 'secret' },
  { plaintext: 'AAAA', keyVersion: 'v1', primary: false, leaked: 'secret' },
  { wrappedKey: WRAPPED, keyVersion: 'v1', rewrapped: true, leaked: 'secret' },
  // An undeclared field in an item matches neither of its anyOf: the serializer throws.
  { results: [{ plaintext: 'AAAA', keyVersion: 'v1', primary: true, leaked: 'secret' }, { error: problem }] },
  { results: [{ plaintext: 'AAAA', keyVersion: 'v1', primary: true }, { error: problem }], leaked: 'secret' },
  { results: [{ wrappedKey: WRAPPED, keyVersion: 'v1', rewrapped: false }, { error: problem }], leaked: 'secret' },
  { alias: 'default', purged: true, leaked: 'secret' },
  { keys: [{ alias: 'default', leaked: 'secret' }], leaked: 'secret' },
  {
    alias: 'default',
    ready: true,
    provider: 'local',
    uri: 'local://default',
    primaryVersion: 2,
    versions: [
      {
        version: 1,
        name: 'v1',
        state: 'ENABLED',
        uses: { generateDataKey: 1, generateDataKeyWithoutPlaintext: 0, wrap: 0, unwrap: 2, rewrap: 0 },
        leaked: 'secret',
      },
      { version: 2, name: 'v2', state: 'ENABLED', lastUsedAt: 'now' },
    ],
    usesSince: 'then',
    refreshedAt: 'now',
    attributes: { team: 'a' },
    leaked: 'secret',
  },
  { status: 'ok', leaked: 'secret' },
  { status: 'ready', audit: 'ok', keys: { total: 1, notReady: 0, leaked: 'secret' }, cache: 'degraded', cacheReason: 'redis_unavailable', leaked: 'secret' },
]

function validated(validate: Compiled, input: unknown) {
  const data = structuredClone(input)
  const valid = validate(data)
  return { valid, errors: (validate as { errors?: unknown }).errors ?? null, data }
}

function serialized(serialize: Compiled, input: unknown) {
  try {
    return { output: serialize(structuredClone(input)) as string }
  } catch (error) {
    return { thrown: (error as Error).message }
  }
}

let workDir: string
let schemasDir: string

before(async () => {
  // The generated code requires Ajv's and fast-json-stringify's runtime helpers, found from where it lies.
  workDir = await mkdtemp(join(tmpdir(), 'keywrap-schemas-'))
  await symlink(join(REPO_ROOT, 'node_modules'), join(workDir, 'node_modules'))
  schemasDir = join(workDir, 'schemas')
  await writePrecompiledSchemas(contract, schemasDir)
})
after(() => rm(workDir, { recursive: true, force: true }))

describe('precompiled route schemas', () => {
  test('every validator gives the runtime-compiled one’s validity, errors and defaults, for every route', async () => {
    const precompiled = precompiledSchemas(contract, schemasDir)
    assert.ok(precompiled, 'the schemas written for this contract are used')
    const runtime = await compiledBy(runtimeFactory())
    const restored = await compiledBy(precompiled.compilersFactory)
    assert.deepEqual([...restored.validators.keys()].sort(), [...runtime.validators.keys()].sort())
    assert.ok(runtime.validators.size > 0)
    for (const [key, validate] of runtime.validators) {
      const outcomes = REQUESTS.map((input) => validated(validate, input))
      assert.deepEqual(
        REQUESTS.map((input) => validated(restored.validators.get(key)!, input)),
        outcomes,
        key,
      )
      assert.ok(outcomes.some((outcome) => outcome.valid) && outcomes.some((outcome) => !outcome.valid), `${key}: valid and invalid inputs`)
    }
  })

  test('every serializer writes what the runtime-compiled one writes, and drops undeclared fields', async () => {
    const precompiled = precompiledSchemas(contract, schemasDir)!
    const runtime = await compiledBy(runtimeFactory())
    const restored = await compiledBy(precompiled.compilersFactory)
    assert.deepEqual([...restored.serializers.keys()].sort(), [...runtime.serializers.keys()].sort())
    assert.ok(runtime.serializers.size > 0)
    for (const [key, serialize] of runtime.serializers) {
      const outcomes = RESPONSES.map((input) => serialized(serialize, input))
      assert.deepEqual(
        RESPONSES.map((input) => serialized(restored.serializers.get(key)!, input)),
        outcomes,
        key,
      )
      const written = outcomes.filter((outcome) => outcome.output !== undefined && outcome.output !== '{}')
      assert.ok(written.length > 0, `${key}: some reply is written`)
      for (const { output } of written) assert.doesNotMatch(output!, /leaked|secret/, key)
    }
  })

  test('the batch-item validator gives the runtime-compiled one’s results', () => {
    const precompiled = precompiledSchemas(contract, schemasDir)!
    const runtime = batchItemValidator(contract)
    const restored = batchItemValidator(contract, precompiled.batchItem)
    const items = [
      { wrappedKey: WRAPPED },
      { wrappedKey: WRAPPED, context: { a: 'b' } },
      'x',
      null,
      { wrappedKey: 1, extra: true },
      { context: tooLargeContext },
    ]
    assert.deepEqual(
      items.map((item, index) => restored(item, index)),
      items.map((item, index) => runtime(item, index)),
    )
  })

  test('are not used for another text of openapi.yaml, nor without a manifest', () => {
    assert.equal(precompiledSchemas({ ...contract, text: `${contract.text}# edited\n` }, schemasDir), undefined)
    assert.equal(precompiledSchemas(contract, join(workDir, 'nowhere')), undefined)
  })
})

describe('a server given precompiled schemas', () => {
  let home: string
  let deps: AppDependencies
  let token: string
  const apps: FastifyInstance[] = []

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'keywrap-test-'))
    const config = loadConfig({ KEYWRAP_HOME: home })
    deps = await composeDependencies(config, { audit: new RecordingAuditSink() })
    token = await mintDevToken(await loadDevIssuer(home), { subject: 'dev', audience: config.auth.audience, ttlSeconds: 600 })
  })
  after(async () => {
    for (const app of apps) await app.close()
    await deps.registry.close()
    await deps.cache.close()
    await deps.audit.close()
    await rm(home, { recursive: true, force: true })
  })

  async function appWith(precompiledSchemasDir?: string): Promise<FastifyInstance> {
    const app = await buildApp({ ...deps, ...(precompiledSchemasDir && { precompiledSchemasDir }) })
    apps.push(app)
    return app
  }

  const post = (app: FastifyInstance, url: string, body: unknown) =>
    app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload: body as object })

  test('answers invalid requests with the problems of a server that compiles its schemas', async () => {
    const runtime = await appWith()
    const precompiled = await appWith(schemasDir)
    const requests: [string, unknown][] = [
      ['/v1/keys/default:wrap', { plaintext: 'not base64!', extra: 1, context: { '': 'x' } }],
      ['/v1/keys/default:generateDataKey', { bytes: 17, includePlaintext: 'no' }],
      ['/v1/keys/Bad!:unwrap', { wrappedKey: WRAPPED }],
      ['/v1/keys/default:batchUnwrap', { items: [{ wrappedKey: 'kw1.x' }, 'x', { wrappedKey: 1 }] }],
      ['/v1/keys/default:batchRewrap', { items: [] }],
    ]
    for (const [url, body] of requests) {
      const [expected, actual] = await Promise.all([post(runtime, url, body), post(precompiled, url, body)])
      const withoutId = (text: string) => JSON.stringify(JSON.parse(text, (key, value: unknown) => (key === 'requestId' ? undefined : value)))
      assert.equal(actual.statusCode, expected.statusCode, url)
      assert.equal(withoutId(actual.body), withoutId(expected.body), url)
    }
  })

  test('uses the precompiled code while the stamp matches, and compiles at start when it does not', async () => {
    // A body validator that accepts anything stands in for the generated one: it shows which is used.
    const tampered = join(workDir, 'tampered')
    await cp(schemasDir, tampered, { recursive: true })
    const manifest = JSON.parse(await readFile(join(tampered, 'manifest.json'), 'utf8')) as { yamlSha256: string; validators: Record<string, string> }
    const wrapBody = Object.entries(manifest.validators).find(([key]) => key.startsWith('POST ') && key.endsWith(':wrap body'))![1]
    await writeFile(join(tampered, wrapBody), 'module.exports = function validate() { return true }\n')
    const body = { plaintext: 'AAAAAAAAAAAAAAAAAAAAAA==', undeclared: true }

    assert.equal((await post(await appWith(tampered), '/v1/keys/default:wrap', body)).statusCode, 200)

    await writeFile(join(tampered, 'manifest.json'), JSON.stringify({ ...manifest, yamlSha256: '0'.repeat(64) }))
    const response = await post(await appWith(tampered), '/v1/keys/default:wrap', body)
    assert.equal(response.statusCode, 400, response.body)
    assert.match(response.body, /\/body\/undeclared is not a known field/)
  })
})
