/**
 * Builds the Fastify application from its parts. It never listens and reads no environment: the
 * server (or a test) builds the parts and passes them in.
 */
import { createHash, randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { AuditSink } from './audit/audit-sink.js'
import type { ManagedAuthenticator } from './auth/authenticator.js'
import type { Principal } from './auth/principal.js'
import { parseTraceContext } from './audit/trace-context.js'
import type { Policy } from './auth/policy.js'
import type { DekCache } from './cache/dek-cache.js'
import { LOCAL_PROJECT_ID, type Config } from './config/config.js'
import { loadContract, type Contract } from './http/openapi-contract.js'
import { installProblemReplies } from './http/problem-replies.js'
import { lazyChildLoggerFactory } from './http/request-logger.js'
import { failoverStore } from './http/rate-limit-store.js'
import type { RedisClient } from './cache/redis-connection.js'
import { batchItemValidator } from './http/batch-items.js'
import { KeywrapError } from './errors.js'
import { KeyService } from './keys/key-service.js'
import { isKeyAccess, OPERATIONS } from './operations.js'
import type { KeyRegistry } from './providers/key-registry.js'
import { Metrics } from './metrics/metrics.js'
import { routes } from '../routes/index.js'
import { callerOf, type RouteServices } from '../routes/route.js'

export interface AppDependencies {
  readonly config: Config
  readonly registry: KeyRegistry
  readonly cache: DekCache
  readonly authenticator: ManagedAuthenticator
  readonly policy: Policy
  readonly audit: AuditSink
  /** HMAC key of wrapped-key fingerprints in audit entries. */
  readonly fingerprintKey: Buffer
  readonly contract?: Contract
  readonly metrics?: Metrics
  /** Shared counters of the per-principal rate limit (Redis); without it, each instance counts alone. */
  readonly rateLimitRedis?: RedisClient
  /** Fastify's logger option; false silences request logs (tests). */
  readonly logger?: FastifyServerOptions['logger']
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** The request as Cloud Logging's httpRequest field describes it (the query string is left out). */
function httpRequestOf(request: FastifyRequest, reply: FastifyReply) {
  return {
    requestMethod: request.method,
    requestUrl: request.url.split('?')[0],
    status: reply.statusCode,
    latency: `${(reply.elapsedTime / 1000).toFixed(6)}s`,
    remoteIp: request.ip,
    userAgent: request.headers['user-agent'],
  }
}

function isLevelEnabled(log: FastifyBaseLogger, level: string): boolean {
  return (log as FastifyBaseLogger & { isLevelEnabled?(level: string): boolean }).isLevelEnabled?.(level) ?? false
}

/**
 * Per-principal rate limit on authenticated routes (counted after authentication, so the key is the
 * verified principal). While Redis cannot answer, each instance counts on its own (rate-limit-store.ts).
 */
async function installRateLimit(app: FastifyInstance, config: Config, redis: RedisClient | undefined, keys: KeyService, metrics: Metrics): Promise<void> {
  const nameSpace = `${config.redis?.keyPrefix ?? 'kw:'}rate:`
  const limit = config.rateLimit!
  await app.register(rateLimit, {
    max: limit.max,
    timeWindow: limit.windowSeconds * 1000,
    hook: 'preHandler',
    // Hashed, so that Redis key names do not list the service's callers.
    keyGenerator: (request) =>
      createHash('sha256').update(`${request.principal?.issuer}\0${request.principal?.id}`).digest('base64url').slice(0, 22),
    allowList: (request) => request.principal === undefined,
    skipOnError: true,
    nameSpace,
    ...(redis && { store: failoverStore(redis, nameSpace, () => metrics.redisErrors.inc({ operation: 'rate-limit' })) }),
    errorResponseBuilder: (request, context) => {
      const refusal = new KeywrapError('rate_limited', `At most ${context.max} requests per ${limit.windowSeconds} s for each caller.`, {
        retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)),
      })
      // A 429 on a key access is audited as a denied access; nothing is released, so the reply does not wait for the entry.
      const operation = request.routeOptions.config.operation
      const alias = (request.params as { alias?: string }).alias
      if (operation && isKeyAccess(operation) && alias) void keys.recordRateLimited(callerOf(request), alias, operation, refusal)
      return refusal
    },
  })
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { config } = deps
  const contract = deps.contract ?? loadContract()
  const metrics = deps.metrics ?? new Metrics()
  const projectId = config.googleProjectId ?? LOCAL_PROJECT_ID
  const app = Fastify({
    logger: deps.logger ?? false,
    // A request's pino child is made only if the request logs (Fastify's default makes one for each).
    ...(deps.logger && { childLoggerFactory: lazyChildLoggerFactory }),
    bodyLimit: config.http.bodyLimitBytes,
    requestTimeout: config.http.requestTimeoutMs,
    // One hop: Cloud Run's front end appends the client's address to X-Forwarded-For; anything to
    // its left was written by the client and must not reach the audit trail as the caller's address.
    trustProxy: config.http.trustProxy ? (_address: string, hop: number) => hop === 0 : false,
    return503OnClosing: true,
    // One line per request, written on completion (below), instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: (request) => {
      const offered = request.headers['x-request-id']
      return typeof offered === 'string' && REQUEST_ID.test(offered) ? offered : randomUUID()
    },
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: true },
    },
  })
  app.decorateRequest('principal', undefined)
  app.decorateRequest('trace', undefined)
  // Bodies are JSON or nothing; any other media type is a 415, not a string for the schema to reject.
  app.removeContentTypeParser(['text/plain'])
  installProblemReplies(app)

  const services: RouteServices = {
    keys: new KeyService({
      registry: deps.registry,
      cache: deps.cache,
      policy: deps.policy,
      audit: deps.audit,
      fingerprintKey: deps.fingerprintKey,
      metrics,
    }),
    registry: deps.registry,
    cache: deps.cache,
    contract,
    metrics,
    batchItem: batchItemValidator(contract),
    audit: deps.audit,
  }

  // Once closing, answer in-flight requests with Connection: close, so their keep-alive sockets end
  // with the response instead of holding the shutdown open until they time out.
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  // Callback-style hooks: on the hot path an async hook costs a promise per request.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    reply.header('x-request-id', request.id)
    reply.header('x-content-type-options', 'nosniff')
    if (request.url.startsWith('/v1/')) reply.header('cache-control', 'no-store')
    done(null, payload)
  })

  app.addHook('onResponse', (request, reply, done) => {
    const operation = request.routeOptions.config.operationId ?? 'unmatched'
    metrics.httpRequestSeconds.observe({ operation, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
    // Successful requests at debug: on Cloud Run the platform's request log has a line for each request
    // already, and the audit trail one for each key access; refusals and failures stay visible at info.
    const level = reply.statusCode >= 500 ? 'error' : reply.statusCode >= 400 ? 'info' : 'debug'
    // pino can tell before the line is built; Fastify's no-op logger (logger: false) cannot, and logs nothing.
    if (isLevelEnabled(request.log, level)) request.log[level]({ httpRequest: httpRequestOf(request, reply), operation }, 'request completed')
    done()
  })

  if (config.rateLimit) await installRateLimit(app, config, deps.rateLimitRedis, services.keys, metrics)

  for (const route of routes) {
    const operation = contract.operations.get(route.operationId)
    if (!operation) throw new Error(`routes/${route.operationId}: openapi.yaml has no operation with this operationId`)
    const entry = OPERATIONS[route.operationId]
    app.route({
      method: operation.method,
      url: operation.url,
      schema: operation.schema,
      config: { operationId: route.operationId, operation: entry },
      // Authenticate before the body is even parsed: an anonymous caller gets 401 and nothing else.
      ...(entry.authenticates && {
        onRequest: (request, _reply, done) => {
          const authorization = request.headers.authorization
          const authenticated = (principal: Principal) => {
            request.principal = principal
            request.trace = parseTraceContext(request.headers, projectId)
            done()
          }
          // A token verified before goes on at once; any other waits for verification.
          const cached = deps.authenticator.cachedPrincipal?.(authorization)
          if (cached) return authenticated(cached)
          deps.authenticator.authenticate(authorization).then(authenticated, done)
        },
      }),
      // A POST whose fields are all optional may come with no body at all.
      ...(operation.schema.body && {
        preValidation: (request, _reply, done) => {
          request.body ??= {}
          done()
        },
      }),
      handler: route.handler(services),
    })
  }

  await app.register(swagger, { mode: 'static', specification: { document: contract.document as never } })
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true, tryItOutEnabled: true } })
  return app
}
