/**
 * Builds the Fastify application from its parts. It never listens and reads no environment: the
 * server (or a test) builds the parts and passes them in.
 */
import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { AuditSink } from './audit/audit-sink.js'
import type { ManagedAuthenticator } from './auth/authenticator.js'
import type { Policy } from './auth/policy.js'
import type { DekCache } from './cache/dek-cache.js'
import type { RedisClient } from './cache/redis-connection.js'
import { LOCAL_PROJECT_ID, type Config } from './config/config.js'
import apiDocs from './http/api-docs.js'
import authentication from './http/authentication.js'
import { batchItemValidator } from './http/batch-items.js'
import { clientErrorProblem } from './http/client-errors.js'
import { loadContract, type Contract } from './http/openapi-contract.js'
import { precompiledSchemas, type PrecompiledSchemas } from './http/precompiled-schemas.js'
import { FailedAuthentications, type FailedAuthenticationLimit } from './http/failed-authentications.js'
import loadShedding from './http/load-shedding.js'
import problemReplies from './http/problem-replies.js'
import refusalAudit, { type RefusalSubject } from './http/refusal-audit.js'
import { KeywrapError } from './errors.js'
import rateLimit from './http/rate-limit.js'
import requestMetrics from './http/request-metrics.js'
import responseHeaders from './http/response-headers.js'
import { KeyService } from './keys/key-service.js'
import { ProviderGate } from './keys/provider-gate.js'
import { Metrics } from './metrics/metrics.js'
import type { KeyRegistry } from './providers/key-registry.js'
import routes from '../routes/index.js'

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
  /** Where to find the schemas `npm run build` compiled (precompiled-schemas.ts); default dist/schemas. */
  readonly precompiledSchemasDir?: string
}

/** Fastify's Ajv options: the schemas precompiled at build time are compiled with these too. */
export const AJV_OPTIONS = {
  // validateSchema off: the contract's schemas are checked against OpenAPI 3.1 by its tests, and
  // compiling the JSON Schema meta-schema to check them again cost every cold start ~50 ms.
  customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: true, validateSchema: false },
} satisfies FastifyServerOptions['ajv']

function serverOptions(config: Config, logger: FastifyServerOptions['logger'] | undefined, precompiled: PrecompiledSchemas | undefined): FastifyServerOptions {
  return {
    logger: logger ?? false,
    bodyLimit: config.http.bodyLimitBytes,
    requestTimeout: config.http.requestTimeoutMs,
    // One hop: Cloud Run's front end appends the client's address to X-Forwarded-For; anything to
    // its left was written by the client and must not reach the audit trail as the caller's address.
    trustProxy: config.http.trustProxy ? (_address: string, hop: number) => hop === 0 : false,
    return503OnClosing: true,
    clientErrorHandler: clientErrorProblem,
    // One line per request, written on completion (request-metrics.ts), instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    // Always the server's own: a client's X-Request-ID is kept beside it (callerOf), never in its place,
    // so that no client can give two audit entries one id.
    genReqId: () => randomUUID(),
    ajv: AJV_OPTIONS,
    ...(precompiled && { schemaController: { compilersFactory: precompiled.compilersFactory } }),
  }
}

/** The failed-authentication limit, whose summary entries name the last request refused unrecorded. */
function failedAuthentications(limit: FailedAuthenticationLimit, keys: KeyService): FailedAuthentications<RefusalSubject | undefined> {
  return new FailedAuthentications<RefusalSubject | undefined>(limit, (_address, { count, last }) => {
    if (!last) return
    const refusal = new KeywrapError('rate_limited', 'Too many failed authentications from this address.')
    void keys.recordRefusal(last.refused, last.alias, last.operation, refusal, {
      reason: `${count} more requests from this address refused (failed-authentication limit), not recorded one by one`,
      unrecorded: count,
    })
  })
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { config } = deps
  const contract = deps.contract ?? loadContract()
  const metrics = deps.metrics ?? new Metrics()
  const precompiled = precompiledSchemas(contract, deps.precompiledSchemasDir)
  const keys = new KeyService({
    registry: deps.registry,
    cache: deps.cache,
    policy: deps.policy,
    audit: deps.audit,
    fingerprintKey: deps.fingerprintKey,
    metrics,
    providerGate: new ProviderGate(config.providerCalls),
  })
  const services = {
    keys,
    registry: deps.registry,
    cache: deps.cache,
    contract,
    metrics,
    batchItem: batchItemValidator(contract, precompiled?.batchItem),
    audit: deps.audit,
  }

  const failures = config.authFailureLimit && failedAuthentications(config.authFailureLimit, keys)

  const app = Fastify(serverOptions(config, deps.logger, precompiled))
  if (failures) app.addHook('onClose', (_app, done) => (failures.close(), done()))
  await app.register(problemReplies)
  await app.register(loadShedding, { maxInFlight: config.http.maxInFlight })
  await app.register(refusalAudit, { keys })
  await app.register(responseHeaders)
  await app.register(requestMetrics, { metrics })
  await app.register(authentication, {
    authenticator: deps.authenticator,
    projectId: config.googleProjectId ?? LOCAL_PROJECT_ID,
    ...(failures && { failures }),
  })
  if (config.rateLimit) {
    const shared = deps.rateLimitRedis && config.redis && { client: deps.rateLimitRedis, keyPrefix: config.redis.keyPrefix }
    await app.register(rateLimit, { ...config.rateLimit, shared, keys, metrics })
  }
  await app.register(routes, { contract, services })
  await app.register(apiDocs, { contract })
  return app
}
