/**
 * The real parts, built from configuration: what `npm start` and the benchmark run.
 */
import { readFileSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { AppDependencies } from './app.js'
import type { AuditSink } from './audit/audit-sink.js'
import { CheckpointedAuditSink } from './audit/checkpointer.js'
import { createAuditSink } from './audit/create-audit-sink.js'
import { createCheckpointSigner } from './audit/create-checkpoint-signer.js'
import type { LineStream } from './audit/stdout-sink.js'
import { createAuthenticator } from './auth/create-authenticator.js'
import { claimsNamed } from './config/grant-conditions.js'
import { developmentPolicy, GrantPolicy, type Policy } from './auth/policy.js'
import { createDekCache } from './cache/create-cache.js'
import type { DekCache } from './cache/dek-cache.js'
import { DEV_ISSUER, LOCAL_PROJECT_ID, type Config, type RedisSettings } from './config/config.js'
import type { RedisConnectionOptions } from './cache/redis-connection.js'
import { Metrics } from './metrics/metrics.js'
import { createKeyRegistry } from './providers/create-providers.js'
import type { KeyRegistry } from './providers/key-registry.js'
import type { Logger } from './support/logger.js'

export async function composeDependencies(
  config: Config,
  overrides: { audit?: AuditSink; logger?: AppDependencies['logger']; operatorLog?: Logger; stdout?: LineStream } = {},
): Promise<AppDependencies> {
  const metrics = new Metrics({ processMetrics: true })
  const access = await composeKeyAccess(config, { ...overrides, metrics })
  const keptClaims = claimsNamed(config.policy?.grants ?? [])
  const authenticator = await createAuthenticator(config.auth, { home: config.home, mode: config.mode, metrics, keptClaims })
  return {
    ...access,
    metrics,
    authenticator,
    ...(config.rateLimit && config.redis && { rateLimitRedis: await rateLimitRedis(config.redis, metrics) }),
    ...(overrides.logger !== undefined && { logger: overrides.logger }),
  }
}

/** What a KeyService needs, for every front end (the HTTP service and the Kubernetes KMS plugin). */
export interface KeyAccessDependencies {
  readonly config: Config
  /** Recorded for GET /metrics; none where nothing serves them (the KMS plugin). */
  readonly metrics?: Metrics
  readonly registry: KeyRegistry
  readonly cache: DekCache
  readonly policy: Policy
  readonly audit: AuditSink
  readonly fingerprintKey: Buffer
}

/** Closes what composeKeyAccess opened (every one, whatever the others do). */
export async function closeKeyAccess(deps: Pick<KeyAccessDependencies, 'registry' | 'cache' | 'audit'>): Promise<void> {
  await Promise.allSettled([deps.registry.close(), deps.cache.close(), deps.audit.close()])
}

/** The keys (read once before anything is served), the DEK cache, the policy and the audit sink. */
export async function composeKeyAccess(
  config: Config,
  overrides: { audit?: AuditSink; operatorLog?: Logger; stdout?: LineStream; auditBatchWithinTurn?: boolean; metrics?: Metrics } = {},
): Promise<KeyAccessDependencies> {
  const { metrics } = overrides
  const operatorLog = overrides.operatorLog ?? stderrOperatorLog
  const fingerprintKey = config.audit.fingerprintKey ?? (await developmentFingerprintKey(config.home))
  const registry = await createKeyRegistry(config, { metrics, logger: operatorLog })
  const failed = await registry.refreshAll()
  if (failed.length > 0) {
    const reasons = registry
      .status()
      .filter((s) => !s.ready)
      .map((s) => `keys.${s.alias}: ${s.lastError}`)
    await registry.close()
    throw new Error(`keywrap cannot read its keys:\n  - ${reasons.join('\n  - ')}`)
  }
  return {
    config,
    ...(metrics && { metrics }),
    registry,
    cache: await cacheFor(config, registry, metrics, operatorLog),
    policy: policyFor(config),
    audit: overrides.audit ?? (await checkpointedAuditSink(config, metrics, operatorLog, overrides.stdout, overrides.auditBatchWithinTurn === true)),
    fingerprintKey,
  }
}

/**
 * The configured sink, its chains checkpointed and signed. A Cloud KMS signing key is read once first,
 * so that a wrong name, a missing permission or a key of another purpose stops the start.
 */
async function checkpointedAuditSink(
  config: Config,
  metrics: Metrics | undefined,
  operatorLog: Logger,
  stdout: LineStream | undefined,
  batchWithinTurn: boolean,
): Promise<AuditSink> {
  const signer = await createCheckpointSigner(config)
  try {
    await signer.publicKeyPem()
  } catch (error) {
    await signer.close()
    throw new Error(`keywrap cannot use its audit signing key ${signer.keyId}: ${(error as Error).message}`)
  }
  const sink = await createAuditSink(config.audit.sink, {
    projectId: config.googleProjectId ?? LOCAL_PROJECT_ID,
    logName: config.audit.logName,
    writeTimeoutMs: config.audit.timeoutMs,
    ...(config.audit.emulatorHost && { emulatorHost: config.audit.emulatorHost }),
    ...(stdout && { stdout }),
    ...(batchWithinTurn && { batchWithinTurn }),
    ...(metrics && { metrics }),
  })
  return new CheckpointedAuditSink(sink, signer, { intervalSeconds: config.audit.checkpointSeconds, signTimeoutMs: config.kms.callTimeoutMs, log: operatorLog })
}

/**
 * Development's fingerprint key: generated once into KEYWRAP_HOME and shared by every process on it
 * (production takes KEYWRAP_AUDIT_FINGERPRINT_KEY from Secret Manager instead).
 */
async function developmentFingerprintKey(home: string): Promise<Buffer> {
  const path = join(home, 'audit-fingerprint.key')
  await mkdir(home, { recursive: true, mode: 0o700 })
  await writeFile(path, randomBytes(32).toString('base64'), { flag: 'wx', mode: 0o600 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  return Buffer.from((await readFile(path, 'utf8')).trim(), 'base64')
}

export function redisConnection(redis: RedisSettings): RedisConnectionOptions {
  return {
    ...(redis.url && { url: redis.url }),
    ...(redis.clusterNodes && { cluster: redis.clusterNodes }),
    ...(redis.sentinels && { sentinels: redis.sentinels }),
    ...(redis.sentinelName && { sentinelName: redis.sentinelName }),
    ...(redis.sentinelPassword && { sentinelPassword: redis.sentinelPassword }),
    ...(redis.tlsCaFile && { tls: { ca: readFileSync(redis.tlsCaFile) } }),
    commandTimeoutMs: redis.commandTimeoutMs,
  }
}

/** The rate limit's own connection; its errors are counted (the limit is skipped, never the request). */
async function rateLimitRedis(redis: RedisSettings, metrics: Metrics) {
  const { createRedisClient } = await import('./cache/redis-connection.js')
  const client = createRedisClient(redisConnection(redis))
  client.on('error', () => metrics.redisErrors.inc({ operation: 'rate-limit' }))
  return client
}

function cacheFor(config: Config, registry: KeyRegistry, metrics: Metrics | undefined, logger: Logger): Promise<DekCache> {
  const { redis } = config
  if (!redis) return createDekCache({ l1: config.cache, ...(metrics && { metrics }) })
  return createDekCache({
    l1: config.cache,
    ...(metrics && { metrics }),
    redis: {
      connection: redisConnection(redis),
      kek: registry.get(redis.kekAlias)!,
      kekAlias: redis.kekAlias,
      logger,
      keyPrefix: redis.keyPrefix,
      ttlSeconds: config.cache.ttlSeconds,
      epochSeconds: redis.epochSeconds,
      generationMemoMs: redis.purgeBoundMs,
      offlineGraceMs: redis.offlineGraceSeconds * 1000,
    },
  })
}

/** Until the app's logger exists, operator-facing provider messages go to stderr as JSON lines. */
const stderrOperatorLog: Logger = {
  debug: () => undefined,
  info: (details, message) => process.stderr.write(`${JSON.stringify({ severity: 'INFO', message, ...details })}\n`),
  warn: (details, message) => process.stderr.write(`${JSON.stringify({ severity: 'WARNING', message, ...details })}\n`),
  error: (details, message) => process.stderr.write(`${JSON.stringify({ severity: 'ERROR', message, ...details })}\n`),
}

function policyFor(config: Config): Policy {
  if (config.policy) return new GrantPolicy(config.policy.grants)
  return config.mode === 'development' && config.auth.devIssuer ? developmentPolicy(DEV_ISSUER) : new GrantPolicy([])
}
