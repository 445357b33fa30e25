/**
 * openapi.yaml is the contract. These tests check that it is a valid OpenAPI 3.1 document, that it
 * follows the service's own conventions (camelCase operationIds, bearer auth and problem+json errors
 * on /v1, public operational endpoints), and that the running app serves exactly the operations it
 * declares, with the schemas it declares, plus the document itself and its Swagger UI.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SwaggerParser from '@apidevtools/swagger-parser'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { FastifyInstance } from 'fastify'
import { errorCatalogue } from '../../src/errors.js'
import { loadContract, OPENAPI_PATH, resolveRefs, snapshotPathOf, writeContractSnapshot, type ContractOperation } from '../../src/http/openapi-contract.js'
import { routes } from '../../routes/index.js'
import { BODY_DEFAULTS } from '../../routes/route.js'
import { OPERATIONS } from '../../src/operations.js'
import { startTestApp, type TestApp } from '../support/test-app.js'

type Node = Record<string, unknown>

const contract = loadContract()
const document = contract.document
const fileText = readFileSync(OPENAPI_PATH, 'utf8')
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const
const PUBLIC_PATHS = ['/healthz', '/readyz', '/openapi.yaml']
/** Operational endpoints outside /v1 that still need a bearer token (and a grant). */
const PROTECTED_OPERATIONAL_PATHS = ['/metrics']
const needsToken = (path: string) => path.startsWith('/v1/') || PROTECTED_OPERATIONAL_PATHS.includes(path)
const PROBLEM_JSON = 'application/problem+json'

interface SpecOperation {
  readonly path: string
  readonly method: string
  /** As written, with its $refs. */
  readonly raw: Node
  /** With every $ref inlined. */
  readonly resolved: Node
}

function specOperations(): SpecOperation[] {
  const operations: SpecOperation[] = []
  for (const [path, item] of Object.entries(document.paths as Record<string, Node>)) {
    for (const method of HTTP_METHODS) {
      const raw = item[method] as Node | undefined
      if (raw) operations.push({ path, method: method.toUpperCase(), raw, resolved: resolveRefs(document, raw) as Node })
    }
  }
  return operations
}

/** The operation's URL with its path parameters filled in (`{alias}` → `default`). */
function concreteUrl(path: string): string {
  return path.replace(/\{alias\}/g, 'default')
}

/** Every `$ref` in the document, with the JSON pointer of the object holding it. */
function collectRefs(value: unknown, at = '#'): Array<{ ref: string; at: string }> {
  if (Array.isArray(value)) return value.flatMap((item, index) => collectRefs(item, `${at}/${index}`))
  if (typeof value !== 'object' || value === null) return []
  const found: Array<{ ref: string; at: string }> = []
  for (const [key, inner] of Object.entries(value)) {
    if (key === '$ref' && typeof inner === 'string') found.push({ ref: inner, at })
    else found.push(...collectRefs(inner, `${at}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`))
  }
  return found
}

function resolvePointer(ref: string): unknown {
  assert.ok(ref.startsWith('#/'), `${ref}: only local references are expected in openapi.yaml`)
  return ref
    .slice(2)
    .split('/')
    .map((segment) => decodeURIComponent(segment).replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, segment) => (typeof node === 'object' && node !== null ? (node as Node)[segment] : undefined), document)
}

/**
 * The routes Fastify serves, as "METHOD url" (Fastify router syntax), read from printRoutes' tree:
 * every line is a segment, indented four characters per level, with its methods in parentheses.
 */
function servedRoutes(app: FastifyInstance): Set<string> {
  const served = new Set<string>()
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^((?:[│ ] {3}|[├└]── )*)(.+?)(?: \(([A-Z]+(?:, [A-Z]+)*)\))?$/.exec(line)
    if (!match || match[2] === undefined || match[2].trim() === '') continue
    const level = match[1]!.length / 4
    stack.length = Math.max(level - 1, 0)
    stack.push(match[2])
    for (const method of match[3]?.split(', ') ?? []) served.add(`${method} ${stack.join('')}`)
  }
  return served
}

describe('openapi.yaml is a valid OpenAPI 3.1 document', () => {
  test('SwaggerParser.validate accepts it (schema validation against the OpenAPI 3.1 meta-schema)', async () => {
    assert.equal(document.openapi, '3.1.0')
    // validate() dereferences its argument in place: give it a deep copy so the contract stays intact.
    const copy = structuredClone(document)
    await assert.doesNotReject(SwaggerParser.validate(copy as never), 'openapi.yaml is not a valid OpenAPI document')
    assert.deepEqual(document, loadContract().document, 'validation must not have changed the parsed contract')
  })

  test('every schema is valid JSON Schema 2020-12 (swagger-parser does not look inside 3.1 Schema Objects)', () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false })
    // OpenAPI's own Schema Object keywords; none is used today, all are legal.
    ajv.addVocabulary(['discriminator', 'xml', 'externalDocs', 'example'])
    const schemas: Array<{ where: string; schema: unknown }> = []
    for (const [name, schema] of Object.entries((document.components as Node).schemas as Node)) {
      schemas.push({ where: `#/components/schemas/${name}`, schema })
    }
    for (const operation of specOperations()) {
      const where = `${operation.method} ${operation.path}`
      for (const parameter of (operation.resolved.parameters ?? []) as Node[]) {
        schemas.push({ where: `${where} parameter ${String(parameter.name)}`, schema: parameter.schema })
      }
      const body = (operation.resolved.requestBody as Node | undefined)?.content as Record<string, Node> | undefined
      for (const [mediaType, media] of Object.entries(body ?? {})) schemas.push({ where: `${where} body ${mediaType}`, schema: media.schema })
      for (const [status, response] of Object.entries(operation.resolved.responses as Record<string, Node>)) {
        for (const [mediaType, media] of Object.entries((response.content ?? {}) as Record<string, Node>)) {
          schemas.push({ where: `${where} ${status} ${mediaType}`, schema: media.schema })
        }
      }
    }
    for (const { where, schema } of schemas) {
      assert.ok(schema !== undefined, `${where}: no schema`)
      assert.doesNotThrow(() => ajv.compile(resolveRefs(document, schema) as Node), `${where}: not a valid JSON Schema 2020-12`)
    }
  })

  test('every $ref resolves, and every component is used', () => {
    const refs = collectRefs(document)
    assert.ok(refs.length > 0)
    for (const { ref, at } of refs) {
      assert.notEqual(resolvePointer(ref), undefined, `${at}: $ref ${ref} does not resolve`)
    }
    // resolveRefs (what the routes use) inlines every reference without failing.
    assert.doesNotThrow(() => resolveRefs(document, document))
    const used = new Set(refs.map(({ ref }) => ref))
    for (const [kind, members] of Object.entries(document.components as Record<string, Node>)) {
      if (kind === 'securitySchemes') continue // referenced by name from `security`, not by $ref
      for (const name of Object.keys(members)) {
        assert.ok(used.has(`#/components/${kind}/${name}`), `#/components/${kind}/${name} is never referenced`)
      }
    }
  })

  test('operationIds are unique, path parameters are declared, and loadContract sees every operation', () => {
    const operations = specOperations()
    const ids = operations.map((operation) => operation.raw.operationId)
    assert.equal(new Set(ids).size, ids.length, `duplicate operationId in ${ids.join(', ')}`)
    assert.deepEqual([...contract.operations.keys()].sort(), [...ids].sort())
    for (const operation of operations) {
      const templated = [...operation.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort()
      const declared = ((operation.resolved.parameters ?? []) as Node[]).filter((parameter) => parameter.in === 'path')
      assert.deepEqual(declared.map((parameter) => parameter.name).sort(), templated, `${operation.method} ${operation.path}: path parameters`)
      for (const parameter of declared)
        assert.equal(parameter.required, true, `${operation.method} ${operation.path}: path parameter ${String(parameter.name)} must be required`)
    }
  })
})

describe('openapi.yaml follows the service conventions', () => {
  const operations = specOperations()

  test('every operation has a camelCase operationId, a summary and a declared tag', () => {
    const tags = new Set(((document.tags ?? []) as Node[]).map((tag) => tag.name))
    for (const { method, path, raw } of operations) {
      assert.match(String(raw.operationId), /^[a-z][a-zA-Z0-9]*$/, `${method} ${path}: operationId must be camelCase`)
      assert.equal(typeof raw.summary, 'string', `${method} ${path}: summary is missing`)
      assert.ok((raw.summary as string).trim().length > 0, `${method} ${path}: summary is empty`)
      for (const tag of (raw.tags ?? []) as string[]) assert.ok(tags.has(tag), `${method} ${path}: tag ${tag} is not declared`)
    }
  })

  test('every path is either under /v1/ or one of the public operational endpoints', () => {
    for (const path of Object.keys(document.paths as Node)) {
      assert.ok(needsToken(path) || PUBLIC_PATHS.includes(path), `${path} is neither /v1/, /metrics nor public`)
    }
    for (const path of PUBLIC_PATHS) assert.ok(path in (document.paths as Node), `${path} is not in openapi.yaml`)
  })

  test('bearerAuth is an HTTP bearer JWT scheme', () => {
    const schemes = (document.components as Node).securitySchemes as Record<string, Node>
    assert.deepEqual(
      { type: schemes.bearerAuth?.type, scheme: schemes.bearerAuth?.scheme, bearerFormat: schemes.bearerAuth?.bearerFormat },
      { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
    )
  })

  for (const { method, path, raw, resolved } of operations) {
    const name = `${method} ${path} (${String(raw.operationId)})`
    if (needsToken(path)) {
      test(`${name} needs bearerAuth and declares 401 and 500 as problem+json`, () => {
        const security = (raw.security ?? document.security) as Array<Record<string, string[]>> | undefined
        assert.ok(Array.isArray(security) && security.length > 0, `${name}: no security requirement`)
        assert.ok(
          security.every((requirement) => 'bearerAuth' in requirement),
          `${name}: every security alternative must include bearerAuth`,
        )
        const responses = resolved.responses as Record<string, Node>
        for (const status of ['401', '500']) {
          const content = responses[status]?.content as Record<string, Node> | undefined
          assert.ok(content?.[PROBLEM_JSON], `${name}: ${status} is not declared with ${PROBLEM_JSON}`)
        }
      })
    } else {
      test(`${name} is public (security: [])`, () => {
        assert.deepEqual(raw.security, [], `${name}: must declare security: []`)
      })
    }

    test(`${name}: every error response is problem+json with the Problem schema`, () => {
      const problem = resolveRefs(document, { $ref: '#/components/schemas/Problem' })
      for (const [status, response] of Object.entries(resolved.responses as Record<string, Node>)) {
        assert.match(status, /^[1-5]\d\d$/, `${name}: response key ${status} is not a status code`)
        if (Number(status) < 400 || (path === '/readyz' && status === '503')) continue
        const content = response.content as Record<string, Node> | undefined
        assert.deepEqual(Object.keys(content ?? {}), [PROBLEM_JSON], `${name} ${status}: must be ${PROBLEM_JSON} only`)
        assert.deepEqual(content![PROBLEM_JSON]!.schema, problem, `${name} ${status}: must use #/components/schemas/Problem`)
      }
      if (resolved.requestBody) {
        for (const status of ['400', '413', '415']) assert.ok(status in (resolved.responses as Node), `${name}: takes a body but does not declare ${status}`)
      }
    })
  }

  test('Problem.code is the error catalogue, and each error response names codes of its own status', () => {
    const problem = ((document.components as Node).schemas as Record<string, Node>).Problem!
    const codes = ((problem.properties as Record<string, Node>).code!.enum as string[]).slice().sort()
    assert.deepEqual(codes, Object.keys(errorCatalogue).sort(), 'Problem.code enum and src/errors.ts errorCatalogue differ')
    const statusOfResponse = new Map<string, number>()
    for (const { raw } of operations) {
      for (const [status, response] of Object.entries(raw.responses as Record<string, Node>)) {
        if (typeof response.$ref !== 'string') continue
        const name = response.$ref.split('/').pop()!
        const previous = statusOfResponse.get(name)
        assert.ok(previous === undefined || previous === Number(status), `responses/${name} is used as both ${previous} and ${status}`)
        statusOfResponse.set(name, Number(status))
      }
    }
    for (const [name, response] of Object.entries((document.components as Node).responses as Record<string, Node>)) {
      const status = statusOfResponse.get(name)
      const named = [...String(response.description).matchAll(/`([a-z_]+)`/g)].map((match) => match[1]!).filter((code) => code in errorCatalogue)
      assert.ok(named.length > 0, `responses/${name}: its description names no error code`)
      for (const code of named) {
        assert.equal(errorCatalogue[code as keyof typeof errorCatalogue].status, status, `responses/${name} (used as ${status}) names ${code}`)
      }
    }
  })
})

describe('the app serves exactly the contract', () => {
  let t: TestApp
  let token: string
  /** What each request's route was registered with, captured by a hook added after buildApp. */
  const routeOptionsSeen = new Map<string, { method: string; url: string | undefined; schema: unknown }>()

  before(async () => {
    t = await startTestApp()
    token = await t.token()
    t.app.addHook('onRequest', async (request) => {
      const { method, url, schema } = request.routeOptions
      routeOptionsSeen.set(`${request.method} ${request.url}`, { method: String(method), url, schema })
    })
    await t.app.ready()
  })
  after(async () => {
    await t.close()
  })

  test('routes/index.ts and openapi.yaml list the same operations, one route each', () => {
    const routeIds = routes.map((route) => route.operationId)
    for (const id of routeIds) assert.ok(contract.operations.has(id), `routes: ${id} is not an operationId of openapi.yaml`)
    for (const id of contract.operations.keys()) {
      assert.equal(
        routeIds.filter((routeId) => routeId === id).length,
        1,
        `openapi.yaml ${id} must have exactly one route (has ${routeIds.filter((r) => r === id).length})`,
      )
    }
  })

  test('the operations catalogue has exactly the operations of openapi.yaml', () => {
    assert.deepEqual(Object.keys(OPERATIONS).sort(), [...contract.operations.keys()].sort())
  })

  test('routes/route.ts BODY_DEFAULTS names exactly the body fields openapi.yaml gives a default', () => {
    for (const operation of contract.operations.values()) {
      const properties = (operation.schema.body?.properties ?? {}) as Record<string, Node>
      const defaulted = Object.keys(properties).filter((name) => properties[name]!.default !== undefined)
      const declared: readonly string[] = BODY_DEFAULTS[operation.operationId as keyof typeof BODY_DEFAULTS] ?? []
      assert.deepEqual([...declared].sort(), defaulted.sort(), operation.operationId)
    }
  })

  test('an operation authenticates exactly when it needs bearerAuth', () => {
    for (const route of routes) {
      const { raw } = specOperations().find((operation) => operation.raw.operationId === route.operationId)!
      const security = (raw.security ?? document.security ?? []) as unknown[]
      const { authenticates } = OPERATIONS[route.operationId]
      assert.equal(
        authenticates,
        security.length > 0,
        `${route.operationId}: authenticates is ${authenticates} in src/operations.ts, but security is ${JSON.stringify(security)}`,
      )
    }
  })

  test('Fastify serves every (method, path) of the spec, and nothing else outside /docs', () => {
    for (const operation of contract.operations.values()) {
      const url = concreteUrl(operation.path)
      assert.ok(
        t.app.hasRoute({ method: operation.method, url: operation.url }),
        `${operation.operationId}: ${operation.method} ${operation.url} is not registered`,
      )
      const found = t.app.findRoute({ method: operation.method, url })
      assert.ok(found, `${operation.operationId}: ${operation.method} ${url} is not served`)
      if (operation.path.includes('{alias}'))
        assert.deepEqual({ ...found.params }, { alias: 'default' }, `${operation.operationId}: alias is not parsed from ${url}`)
    }
    const expected = new Set(
      [...contract.operations.values()].flatMap((operation) => [
        `${operation.method} ${operation.url}`,
        ...(operation.method === 'GET' ? [`HEAD ${operation.url}`] : []),
      ]),
    )
    const served = new Set([...servedRoutes(t.app)].filter((route) => !/^[A-Z]+ \/docs(\/|$)/.test(route)))
    assert.deepEqual([...served].sort(), [...expected].sort(), 'Fastify routes (outside /docs) and openapi.yaml differ')
  })

  test("each route was registered with its operation's method, URL and schema from openapi.yaml", async () => {
    const fresh = loadContract()
    for (const operation of contract.operations.values()) {
      const url = concreteUrl(operation.path)
      await t.app.inject({ method: operation.method, url })
      const seen = routeOptionsSeen.get(`${operation.method} ${url}`)
      assert.ok(seen, `${operation.operationId}: no request reached a route at ${operation.method} ${url}`)
      assert.equal(seen.method, operation.method, `${operation.operationId}: method`)
      assert.equal(seen.url, operation.url, `${operation.operationId}: url`)
      // Fastify marks the schema object it compiled with a symbol; compare the JSON only.
      assert.deepEqual(
        JSON.parse(JSON.stringify(seen.schema)),
        (fresh.operations.get(operation.operationId) as ContractOperation).schema,
        `${operation.operationId}: the route's schema is not the contract's`,
      )
    }
  })

  for (const operation of contract.operations.values()) {
    if (operation.method !== 'POST') continue
    test(`${operation.operationId}: an unknown body field is a 400 invalid_request (the body schema is the spec's)`, async () => {
      const response = await t.call(operation.operationId, { token, body: { notInTheSpec: true } })
      assert.equal(response.statusCode, 400, response.body)
      assert.equal(response.json.code, 'invalid_request')
      assert.ok(
        (response.json.errors as Array<{ pointer: string }>).some((error) => error.pointer === '/body/notInTheSpec'),
        `${operation.operationId}: ${response.body}`,
      )
    })
  }

  test("getKey: an alias that does not match the spec's pattern is a 400 on /params/alias", async () => {
    const response = await t.call('getKey', { token, alias: 'Not-An-Alias' })
    assert.equal(response.statusCode, 400, response.body)
    assert.equal(response.json.code, 'invalid_request')
    assert.deepEqual(
      response.json.errors.map((error: { pointer: string }) => error.pointer),
      ['/params/alias'],
    )
  })

  test('a /v1 operation without a token is 401 problem+json with WWW-Authenticate; public ones need none', async () => {
    for (const operation of contract.operations.values()) {
      const response = await t.call(operation.operationId, { token: null, ...(operation.method === 'POST' && { body: {} }) })
      if (needsToken(operation.path)) {
        assert.equal(response.statusCode, 401, `${operation.operationId}: ${response.body}`)
        assert.equal(response.json.code, 'unauthenticated')
        assert.match(String(response.headers['www-authenticate']), /^Bearer /)
      } else {
        assert.equal(response.statusCode, 200, `${operation.operationId}: ${response.body}`)
      }
    }
  })

  test('GET /openapi.yaml serves exactly the file, as application/yaml', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/openapi.yaml' })
    assert.equal(response.statusCode, 200)
    assert.equal(String(response.headers['content-type']).split(';')[0]!.trim(), 'application/yaml')
    assert.equal(response.body, fileText, 'GET /openapi.yaml differs from openapi.yaml')
    assert.equal(response.body, contract.text)
  })

  test('GET /docs serves the Swagger UI page and its assets from the service itself, without the network', async () => {
    const realFetch = globalThis.fetch
    globalThis.fetch = async (input) => {
      throw new Error(`/docs must not touch the network (fetch ${String(input)})`)
    }
    try {
      let url = '/docs'
      let response = await t.app.inject({ method: 'GET', url })
      for (let hops = 0; response.statusCode >= 300 && response.statusCode < 400; hops++) {
        assert.ok(hops < 5, 'too many redirects from /docs')
        const location = String(response.headers.location)
        url = new URL(location, `http://localhost${url}`).pathname
        response = await t.app.inject({ method: 'GET', url })
      }
      assert.equal(response.statusCode, 200)
      assert.match(String(response.headers['content-type']), /^text\/html/)
      assert.match(response.body, /<html[\s>]/i)
      assert.match(response.body, /swagger-ui/i)
      const assets = [...response.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!)
      assert.ok(assets.length > 0, 'the page references no assets')
      for (const asset of assets) {
        assert.doesNotMatch(asset, /^(?:[a-z]+:)?\/\//i, `/docs loads ${asset} from another origin`)
        const assetUrl = new URL(asset, `http://localhost${url}`).pathname
        const assetResponse = await t.app.inject({ method: 'GET', url: assetUrl })
        assert.equal(assetResponse.statusCode, 200, `${assetUrl} (referenced by /docs) is not served`)
      }
      // The UI shows the contract itself.
      const json = await t.app.inject({ method: 'GET', url: '/docs/json' })
      assert.equal(json.statusCode, 200)
      assert.deepEqual(JSON.parse(json.body), document, '/docs/json is not openapi.yaml')
    } finally {
      globalThis.fetch = realFetch
    }
  })
})

describe('the parsed snapshot npm run build writes beside the YAML', () => {
  const copyOfTheSpec = () => {
    const path = join(mkdtempSync(join(tmpdir(), 'keywrap-contract-')), 'openapi.yaml')
    copyFileSync(OPENAPI_PATH, path)
    return path
  }

  test('holds exactly what parsing the YAML gives, and is what loadContract then reads', () => {
    const path = copyOfTheSpec()
    writeContractSnapshot(path)
    const snapshot = JSON.parse(readFileSync(snapshotPathOf(path), 'utf8')) as { yamlSha256: string; document: Node }
    assert.deepEqual(snapshot.document, document)
    assert.deepEqual(loadContract(path).document, document)
    // A snapshot that differs from the YAML but carries its stamp is believed: proof that it is read.
    writeFileSync(snapshotPathOf(path), JSON.stringify({ ...snapshot, document: { ...snapshot.document, info: { title: 'from the snapshot' } } }))
    assert.deepEqual(loadContract(path).document.info, { title: 'from the snapshot' })
  })

  test('is ignored once the YAML beside it has changed', () => {
    const path = copyOfTheSpec()
    writeContractSnapshot(path)
    writeFileSync(path, fileText.replace(/^ {2}title: .*$/m, '  title: edited after the build'))
    assert.equal((loadContract(path).document.info as Node).title, 'edited after the build')
  })
})
