/**
 * The real parts, built from configuration: what `npm start`, the CLI and the benchmark run.
 */
import type { AppDependencies } from './app.js'
import { StdoutAuditSink } from './audit/stdout-sink.js'
import type { AuditSink } from './audit/audit-sink.js'
import { JwtAuthenticator, type TrustedIssuer } from './auth/authenticator.js'
import { loadDevIssuer } from './auth/dev-issuer.js'
import { developmentPolicy, GrantPolicy, type Policy } from './auth/policy.js'
import { readFileSync } from 'node:fs'
import { createDekCache } from './cache/create-cache.js'
import type { DekCache } from './cache/dek-cache.js'
import { DEV_ISSUER, type Config } from './config/config.js'
import { createKeyRegistry, type ProviderLogger } from './providers/create-providers.js'
import type { KeyRegistry } from './providers/key-registry.js'
import { Metrics } from './metrics/metrics.js'

/** Project id for log entries when none is configured (development only; production requires one). */
const LOCAL_PROJECT_ID = 'keywrap-local'

export async function composeDependencies(
  config: Config,
  overrides: { audit?: AuditSink; logger?: AppDependencies['logger']; operatorLog?: ProviderLogger } = {},
): Promise<AppDependencies> {
  const metrics = new Metrics({ processMetrics: true })
  const operatorLog = overrides.operatorLog ?? stderrOperatorLog
  const registry = await createKeyRegistry(config, { metrics, logger: operatorLog })
  const failed = await registry.refreshAll()
  if (failed.length > 0) {
    const reasons = registry.status().filter((s) => !s.ready).map((s) => `keys.${s.alias}: ${s.lastError}`)
    await registry.close()
    throw new Error(`keywrap cannot read its keys:\n  - ${reasons.join('\n  - ')}`)
  }
  const issuers: TrustedIssuer[] = []
  if (config.auth.devIssuer) {
    const dev = await loadDevIssuer(config.home)
    issuers.push({ issuer: DEV_ISSUER, audience: config.auth.audience, algorithms: ['EdDSA'], key: dev.publicKey })
  }
  return {
    config,
    metrics,
    registry,
    cache: cacheFor(config, registry, metrics),
    authenticator: new JwtAuthenticator(issuers, { maxTokenBytes: config.auth.maxTokenBytes }),
    policy: policyFor(config),
    audit:
      overrides.audit ??
      new StdoutAuditSink({ projectId: config.googleProjectId ?? LOCAL_PROJECT_ID, logName: config.audit.logName }),
    ...(overrides.logger !== undefined && { logger: overrides.logger }),
  }
}

function cacheFor(config: Config, registry: KeyRegistry, metrics: Metrics): DekCache {
  const { redis } = config
  if (!redis) return createDekCache({ l1: config.cache, metrics })
  return createDekCache({
    l1: config.cache,
    metrics,
    redis: {
      connection: {
        ...(redis.url && { url: redis.url }),
        ...(redis.clusterNodes && { cluster: redis.clusterNodes }),
        ...(redis.sentinels && { sentinels: redis.sentinels }),
        ...(redis.sentinelName && { sentinelName: redis.sentinelName }),
        ...(redis.sentinelPassword && { sentinelPassword: redis.sentinelPassword }),
        ...(redis.tlsCaFile && { tls: { ca: readFileSync(redis.tlsCaFile) } }),
        commandTimeoutMs: redis.commandTimeoutMs,
      },
      kek: registry.get(redis.kekAlias)!,
      keyPrefix: redis.keyPrefix,
      ttlSeconds: config.cache.ttlSeconds,
      epochSeconds: redis.epochSeconds,
      generationMemoMs: redis.purgeBoundMs,
      offlineGraceMs: redis.offlineGraceSeconds * 1000,
    },
  })
}

/** Until the app's logger exists, operator-facing provider messages go to stderr as JSON lines. */
const stderrOperatorLog: ProviderLogger = {
  warn: (details, message) => process.stderr.write(`${JSON.stringify({ severity: 'WARNING', message, ...details })}\n`),
  error: (details, message) => process.stderr.write(`${JSON.stringify({ severity: 'ERROR', message, ...details })}\n`),
}

function policyFor(config: Config): Policy {
  if (config.policy) return new GrantPolicy(config.policy.grants)
  return config.mode === 'development' && config.auth.devIssuer ? developmentPolicy(DEV_ISSUER) : new GrantPolicy([])
}
