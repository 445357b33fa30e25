/**
 * A keywrap app assembled the way the server assembles it (real local keyring, real development
 * issuer, real policy and cache) on a fresh temporary KEYWRAP_HOME, with a recording audit sink.
 * `call` injects a request for an operation of openapi.yaml and checks the response against it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDependencies } from '../../src/app.js'
import { loadDevIssuer, mintDevToken } from '../../src/auth/dev-issuer.js'
import { composeDependencies } from '../../src/compose.js'
import { loadConfig } from '../../src/config/load-config.js'
import type { Config } from '../../src/config/config.js'
import { loadContract } from '../../src/http/openapi-contract.js'
import { assertMatchesContract } from './contract-checker.js'
import { RecordingAuditSink } from './recording-audit-sink.js'

const contract = loadContract()

export interface TestApp {
  readonly app: FastifyInstance
  readonly deps: AppDependencies
  readonly config: Config
  readonly home: string
  readonly audit: RecordingAuditSink
  /** A development token; `claims` adds string claims (those grants' context conditions compare with). */
  token(subject?: string, claims?: Record<string, string>): Promise<string>
  call(operationId: string, request?: CallRequest): Promise<CallResponse>
  close(): Promise<void>
}

export interface CallRequest {
  alias?: string
  body?: unknown
  /** A raw body, sent as is (with `contentType`). */
  payload?: string
  contentType?: string
  /** Bearer token; default: a fresh development token for "dev". null sends no Authorization header. */
  token?: string | null
  headers?: Record<string, string>
}

export interface CallResponse {
  statusCode: number
  headers: Record<string, unknown>
  body: string
  json: any
}

export interface TestAppOptions {
  configFile?: object
  env?: Record<string, string>
  home?: string
  /** Use the audit sink the configuration names (KEYWRAP_AUDIT_SINK) instead of the recording one. */
  configuredAudit?: boolean
}

export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const ownHome = options.home === undefined
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'keywrap-test-')))
  const env: Record<string, string> = { KEYWRAP_HOME: home, ...options.env }
  if (options.configFile) {
    env.KEYWRAP_CONFIG = join(home, 'config.json')
    await writeFile(env.KEYWRAP_CONFIG, JSON.stringify(options.configFile))
  }
  const config = loadConfig(env)
  const audit = new RecordingAuditSink()
  const deps = await composeDependencies(config, options.configuredAudit ? {} : { audit })
  const app = await buildApp(deps)
  const issuer = await loadDevIssuer(home)
  const token = (subject = 'dev', claims?: Record<string, string>) =>
    mintDevToken(issuer, { subject, audience: config.auth.audience, ttlSeconds: 600, ...(claims && { claims }) })

  const call = async (operationId: string, request: CallRequest = {}): Promise<CallResponse> => {
    const operation = contract.operations.get(operationId)
    if (!operation) throw new Error(`no operation ${operationId}`)
    const headers: Record<string, string> = { ...request.headers }
    const bearer = request.token === undefined ? await token() : request.token
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`
    if (request.contentType) headers['content-type'] = request.contentType
    const url = operation.path.replace('{alias}', encodeURIComponent(request.alias ?? 'default'))
    const response = await app.inject({
      method: operation.method,
      url,
      headers,
      ...(request.body !== undefined && { payload: request.body as object }),
      ...(request.payload !== undefined && { payload: request.payload }),
    })
    assertMatchesContract(operationId, response)
    const isJson = /json/.test(String(response.headers['content-type']))
    return { statusCode: response.statusCode, headers: response.headers, body: response.body, json: isJson ? JSON.parse(response.body) : undefined }
  }

  return {
    app,
    deps,
    config,
    home,
    audit,
    token,
    call,
    async close() {
      await app.close()
      await deps.registry.close()
      await deps.cache.close()
      await deps.audit.close()
      await deps.rateLimitRedis?.quit()
      if (ownHome) await rm(home, { recursive: true, force: true })
    },
  }
}
