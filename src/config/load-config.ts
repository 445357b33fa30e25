import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { isPermission } from '../operations.js'
import { parseAuditSinkSetting, type AuditSinkSetting } from './audit-sink-setting.js'
import { parseFingerprintKey } from './fingerprint-key.js'
import { parseEmulatorHost } from '../support/emulator-host.js'
import { readAuthSettings } from './auth-settings.js'
import { DEV_ISSUER, KMS_PLUGIN_ISSUER, type Config, type Grant, type Mode } from './config.js'
import { parseYaml } from '../support/yaml.js'
import { CONDITION_FIELDS, readGrantConditions } from './grant-conditions.js'

/** The default of each environment setting that has one whatever the mode: the only place they are written. */
export const DEFAULTS = {
  PORT: 8080,
  KEYWRAP_HOME: './.keywrap',
  KEYWRAP_KEY_REFRESH_SECONDS: 60,
  KEYWRAP_CACHE_TTL_SECONDS: 600,
  KEYWRAP_CACHE_MAX_ENTRIES: 100_000,
  KEYWRAP_BODY_LIMIT_BYTES: 1_048_576,
  KEYWRAP_REQUEST_TIMEOUT_MS: 10_000,
  KEYWRAP_MAX_IN_FLIGHT: 128,
  KEYWRAP_LOG_LEVEL: 'info',
  KEYWRAP_AUDIT_LOG_NAME: 'keywrap-audit',
  KEYWRAP_AUDIT_SINK: 'stdout',
  KEYWRAP_AUDIT_TIMEOUT_MS: 2000,
  KEYWRAP_AUDIT_CHECKPOINT_SECONDS: 60,
  KEYWRAP_RATE_LIMIT_WINDOW_SECONDS: 60,
  KEYWRAP_AUTH_FAILURE_LIMIT: 100,
  KEYWRAP_AUTH_FAILURE_WINDOW_SECONDS: 60,
  KEYWRAP_REDIS_COMMAND_TIMEOUT_MS: 75,
  KEYWRAP_REDIS_KEY_PREFIX: 'kw:',
  KEYWRAP_CACHE_KEK_ALIAS: 'default',
  KEYWRAP_CACHE_EPOCH_SECONDS: 86_400,
  KEYWRAP_CACHE_PURGE_BOUND_MS: 1000,
  KEYWRAP_CACHE_OFFLINE_GRACE_SECONDS: 30,
  KEYWRAP_KMS_TIMEOUT_MS: 2000,
  KEYWRAP_KMS_BUDGET_MS: 4000,
  KEYWRAP_PROVIDER_MAX_CONCURRENT: 128,
  KEYWRAP_PROVIDER_MAX_QUEUED: 256,
} as const

const PRODUCTION_RATE_LIMIT = 6000

const NONE = '(none)'

/** Every environment variable keywrap reads, with its default as docs/configuration.md's settings table gives it. */
export const ENVIRONMENT_SETTINGS: Readonly<Record<string, string>> = {
  NODE_ENV: 'development',
  HOST: '127.0.0.1 in development, 0.0.0.0 in production',
  KEYWRAP_CONFIG: NONE,
  KEYWRAP_TRUST_PROXY: 'false in development, true in production',
  KEYWRAP_AUDIT_FINGERPRINT_KEY: 'generated into KEYWRAP_HOME in development; required in production',
  KEYWRAP_AUDIT_SIGNING_KEY: 'an Ed25519 key generated into KEYWRAP_HOME in development; required in production',
  LOGGING_EMULATOR_HOST: NONE,
  GOOGLE_CLOUD_PROJECT: NONE,
  KEYWRAP_RATE_LIMIT: `0 (off) in development, ${PRODUCTION_RATE_LIMIT} in production`,
  REDIS_URL: NONE,
  KEYWRAP_REDIS_CLUSTER_NODES: NONE,
  KEYWRAP_REDIS_SENTINELS: NONE,
  KEYWRAP_REDIS_SENTINEL_NAME: NONE,
  KEYWRAP_REDIS_SENTINEL_PASSWORD: NONE,
  KEYWRAP_REDIS_TLS_CA_FILE: NONE,
  KMS_EMULATOR_HOST: NONE,
  ...Object.fromEntries(Object.entries(DEFAULTS).map(([name, value]) => [name, String(value)])),
}

export class ConfigError extends Error {
  readonly violations: readonly string[]
  constructor(violations: readonly string[]) {
    super(`keywrap cannot start; fix these settings:\n${violations.map((v) => `  - ${v}`).join('\n')}`)
    this.name = 'ConfigError'
    this.violations = violations
  }
}

const ALIAS = /^[a-z0-9][a-z0-9_-]{0,62}$/
const LOCAL_URI = /^local:\/\/([a-z0-9][a-z0-9_-]{0,62})$/
const GCP_KMS_URI = /^gcp-kms:\/\/projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/
const GCP_KMS_VERSION_URI = /^gcp-kms:\/\/(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+\/cryptoKeyVersions\/[1-9][0-9]*)$/
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
const FILE_SECTIONS = ['keys', 'auth', 'policy']
const GRANT_FIELDS = ['principals', 'keys', 'operations', 'issuer', ...CONDITION_FIELDS]

/** Reads and validates every setting; throws ConfigError listing all violations at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const violations: string[] = []
  const setting = new SettingReader(env, violations)

  const mode = readMode(env.NODE_ENV, violations)
  const configFile = env.KEYWRAP_CONFIG || undefined
  const file = configFile ? readConfigFile(configFile, violations) : {}

  for (const section of Object.keys(file)) {
    if (!FILE_SECTIONS.includes(section)) violations.push(`${configFile}: unknown section "${section}" (known: ${FILE_SECTIONS.join(', ')})`)
  }
  const keys = readKeys(file.keys, mode, violations)
  const auth = readAuthSettings(file.auth, mode, violations)
  const policy = readPolicy(file.policy, violations)

  const config: Config = {
    mode,
    host: env.HOST || (mode === 'production' ? '0.0.0.0' : '127.0.0.1'),
    port: setting.integer('PORT', DEFAULTS.PORT, 0, 65535),
    home: resolve(env.KEYWRAP_HOME || DEFAULTS.KEYWRAP_HOME),
    configFile,
    keys,
    keyRefreshSeconds: setting.integer('KEYWRAP_KEY_REFRESH_SECONDS', DEFAULTS.KEYWRAP_KEY_REFRESH_SECONDS, 1, 86_400),
    cache: {
      ttlSeconds: setting.integer('KEYWRAP_CACHE_TTL_SECONDS', DEFAULTS.KEYWRAP_CACHE_TTL_SECONDS, 0, 86_400),
      maxEntries: setting.integer('KEYWRAP_CACHE_MAX_ENTRIES', DEFAULTS.KEYWRAP_CACHE_MAX_ENTRIES, 0, 10_000_000),
    },
    redis: readRedis(env, setting, keys, violations),
    auth,
    rateLimit: readRateLimit(setting, mode),
    authFailureLimit: readAuthFailureLimit(setting),
    policy,
    http: {
      bodyLimitBytes: setting.integer('KEYWRAP_BODY_LIMIT_BYTES', DEFAULTS.KEYWRAP_BODY_LIMIT_BYTES, 1024, 64 * 1_048_576),
      requestTimeoutMs: setting.integer('KEYWRAP_REQUEST_TIMEOUT_MS', DEFAULTS.KEYWRAP_REQUEST_TIMEOUT_MS, 100, 600_000),
      trustProxy: setting.boolean('KEYWRAP_TRUST_PROXY', mode === 'production'),
      maxInFlight: setting.integer('KEYWRAP_MAX_IN_FLIGHT', DEFAULTS.KEYWRAP_MAX_IN_FLIGHT, 1, 100_000),
    },
    logLevel: setting.oneOf('KEYWRAP_LOG_LEVEL', LOG_LEVELS, DEFAULTS.KEYWRAP_LOG_LEVEL),
    audit: {
      logName: setting.pattern('KEYWRAP_AUDIT_LOG_NAME', /^[A-Za-z0-9_./-]{1,512}$/, DEFAULTS.KEYWRAP_AUDIT_LOG_NAME),
      sink: readAuditSink(env, violations),
      timeoutMs: setting.integer('KEYWRAP_AUDIT_TIMEOUT_MS', DEFAULTS.KEYWRAP_AUDIT_TIMEOUT_MS, 10, 60_000),
      emulatorHost: readEmulatorHost(env.LOGGING_EMULATOR_HOST, 'LOGGING_EMULATOR_HOST', violations),
      fingerprintKey: readFingerprintKey(env.KEYWRAP_AUDIT_FINGERPRINT_KEY, violations),
      signingKey: readSigningKey(env.KEYWRAP_AUDIT_SIGNING_KEY, violations),
      checkpointSeconds: setting.integer('KEYWRAP_AUDIT_CHECKPOINT_SECONDS', DEFAULTS.KEYWRAP_AUDIT_CHECKPOINT_SECONDS, 1, 86_400),
    },
    googleProjectId: env.GOOGLE_CLOUD_PROJECT || undefined,
    kms: {
      emulatorHost: readEmulatorHost(env.KMS_EMULATOR_HOST, 'KMS_EMULATOR_HOST', violations),
      callTimeoutMs: setting.integer('KEYWRAP_KMS_TIMEOUT_MS', DEFAULTS.KEYWRAP_KMS_TIMEOUT_MS, 50, 60_000),
      budgetMs: setting.integer('KEYWRAP_KMS_BUDGET_MS', DEFAULTS.KEYWRAP_KMS_BUDGET_MS, 50, 60_000),
    },
    providerCalls: {
      concurrency: setting.integer('KEYWRAP_PROVIDER_MAX_CONCURRENT', DEFAULTS.KEYWRAP_PROVIDER_MAX_CONCURRENT, 1, 10_000),
      queue: setting.integer('KEYWRAP_PROVIDER_MAX_QUEUED', DEFAULTS.KEYWRAP_PROVIDER_MAX_QUEUED, 0, 100_000),
    },
  }
  if (config.redis && config.cache.ttlSeconds === 0) {
    violations.push('KEYWRAP_CACHE_TTL_SECONDS=0 turns the cache off, but REDIS_URL asks for the shared cache; unset REDIS_URL or give a TTL')
  }
  if (config.kms.budgetMs < config.kms.callTimeoutMs) {
    violations.push(`KEYWRAP_KMS_BUDGET_MS=${config.kms.budgetMs} must be at least KEYWRAP_KMS_TIMEOUT_MS=${config.kms.callTimeoutMs}`)
  }
  if (config.kms.budgetMs >= config.http.requestTimeoutMs) {
    violations.push(`KEYWRAP_KMS_BUDGET_MS=${config.kms.budgetMs} must be below KEYWRAP_REQUEST_TIMEOUT_MS=${config.http.requestTimeoutMs}`)
  }
  violations.push(...ambiguousGrants(config))
  if (mode === 'production') violations.push(...productionViolations(config))
  if (violations.length > 0) throw new ConfigError(violations)
  return deepFreeze(config)
}

/**
 * With more than one token issuer, the same `sub` (or email) from two issuers is two different callers,
 * so every grant must say which issuer its principals come from.
 */
function ambiguousGrants(config: Config): string[] {
  if (!config.policy) return []
  const known = [...config.auth.issuers.map((issuer) => issuer.issuer), ...(config.auth.devIssuer ? [DEV_ISSUER] : [])]
  return config.policy.grants.flatMap((grant, index) => {
    if (grant.issuer === undefined) {
      return known.length < 2
        ? []
        : [`policy.grants[${index}].issuer: ${known.length} token issuers are configured; name the one this grant's principals come from (${known.join(', ')})`]
    }
    // The KMS plugin's principal (npx keywrap kms-plugin) has an issuer of its own, never a token's.
    return known.includes(grant.issuer) || grant.issuer === KMS_PLUGIN_ISSUER
      ? []
      : [
          `policy.grants[${index}].issuer: "${grant.issuer}" is not a configured issuer, so the grant would match nobody (configured: ${known.join(', ') || 'none'})`,
        ]
  })
}

/** What NODE_ENV=production refuses: anything that only makes sense on a developer's machine. */
function productionViolations(config: Config): string[] {
  const violations: string[] = []
  for (const [alias, uri] of Object.entries(config.keys)) {
    if (uri.startsWith('local://')) violations.push(`keys.${alias}: ${uri} is a development key; in production map "${alias}" to a gcp-kms:// key`)
  }
  if (config.auth.devIssuer) violations.push('auth.devIssuer: the development issuer cannot be used in production; remove it or set it to false')
  if (config.auth.issuers.length === 0) {
    violations.push('auth.issuers: production needs at least one token issuer (e.g. {"preset": "google", "audience": "https://SERVICE_URL"})')
  }
  if (!config.policy || config.policy.grants.length === 0) {
    violations.push('policy.grants: production needs at least one grant (deny by default would refuse every call)')
  }
  if (!config.audit.fingerprintKey) {
    violations.push(
      'KEYWRAP_AUDIT_FINGERPRINT_KEY: set a base64 secret of 32 bytes or more (from Secret Manager), the same on every instance, so audit fingerprints correlate across the fleet',
    )
  }
  if (!config.audit.signingKey) {
    violations.push(
      'KEYWRAP_AUDIT_SIGNING_KEY: set the Cloud KMS key version that signs audit checkpoints (gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N, purpose asymmetric-signing, EC_SIGN_P256_SHA256); production does not sign with a key kept on disk',
    )
  }
  if (config.audit.emulatorHost) violations.push(`LOGGING_EMULATOR_HOST=${config.audit.emulatorHost}: production writes to Cloud Logging itself; unset it`)
  if (config.kms.emulatorHost) violations.push(`KMS_EMULATOR_HOST=${config.kms.emulatorHost}: production talks to Cloud KMS itself; unset it`)
  if (!config.googleProjectId)
    violations.push('GOOGLE_CLOUD_PROJECT: set the Google Cloud project id (Cloud Run does not set it, and keywrap never probes for it)')
  return violations
}

function readAuthFailureLimit(setting: SettingReader): Config['authFailureLimit'] {
  const max = setting.integer('KEYWRAP_AUTH_FAILURE_LIMIT', DEFAULTS.KEYWRAP_AUTH_FAILURE_LIMIT, 0, 10_000_000)
  const windowSeconds = setting.integer('KEYWRAP_AUTH_FAILURE_WINDOW_SECONDS', DEFAULTS.KEYWRAP_AUTH_FAILURE_WINDOW_SECONDS, 1, 86_400)
  return max === 0 ? undefined : { max, windowSeconds }
}

const NODE_ENVS = ['production', 'development', 'test'] as const

/** `test` runs as development; any other value is refused rather than silently run as development. */
function readMode(raw: string | undefined, violations: string[]): Mode {
  if (raw === undefined || raw === '') return 'development'
  if (!(NODE_ENVS as readonly string[]).includes(raw)) {
    violations.push(`NODE_ENV="${raw}" must be one of ${NODE_ENVS.join(', ')} (test runs as development); use production for a deployed service`)
  }
  return raw === 'production' ? 'production' : 'development'
}

function readRateLimit(setting: SettingReader, mode: Mode): Config['rateLimit'] {
  const max = setting.integer('KEYWRAP_RATE_LIMIT', mode === 'production' ? PRODUCTION_RATE_LIMIT : 0, 0, 10_000_000)
  const windowSeconds = setting.integer('KEYWRAP_RATE_LIMIT_WINDOW_SECONDS', DEFAULTS.KEYWRAP_RATE_LIMIT_WINDOW_SECONDS, 1, 86_400)
  return max > 0 ? { max, windowSeconds } : undefined
}

function readAuditSink(env: NodeJS.ProcessEnv, violations: string[]): AuditSinkSetting {
  const raw = env.KEYWRAP_AUDIT_SINK || DEFAULTS.KEYWRAP_AUDIT_SINK
  const parsed = parseAuditSinkSetting(raw)
  if ('error' in parsed) {
    violations.push(`KEYWRAP_AUDIT_SINK="${raw}" ${parsed.error}`)
    return { kind: 'stdout' }
  }
  if (parsed.kind === 'cloud-logging' && !env.GOOGLE_CLOUD_PROJECT) {
    violations.push('KEYWRAP_AUDIT_SINK=cloud-logging needs GOOGLE_CLOUD_PROJECT (the project whose log receives the entries)')
  }
  return parsed
}

function readEmulatorHost(raw: string | undefined, name: string, violations: string[]): string | undefined {
  if (!raw) return undefined
  const parsed = parseEmulatorHost(raw)
  if ('error' in parsed) violations.push(`${name}="${raw}" ${parsed.error}`)
  return raw
}

/** The key version's resource name (without gcp-kms://), or undefined for the embedded default's Ed25519 key. */
function readSigningKey(raw: string | undefined, violations: string[]): string | undefined {
  if (!raw) return undefined
  const match = GCP_KMS_VERSION_URI.exec(raw.trim())
  if (!match) {
    violations.push(
      `KEYWRAP_AUDIT_SIGNING_KEY="${raw}" must be a Cloud KMS key version: gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N`,
    )
    return undefined
  }
  return match[1]
}

function readFingerprintKey(raw: string | undefined, violations: string[]): Buffer | undefined {
  if (!raw) return undefined
  const parsed = parseFingerprintKey(raw)
  if ('error' in parsed) {
    violations.push(`KEYWRAP_AUDIT_FINGERPRINT_KEY ${parsed.error}`)
    return undefined
  }
  return parsed
}

function readRedis(env: NodeJS.ProcessEnv, setting: SettingReader, keys: Record<string, string>, violations: string[]): Config['redis'] {
  const url = env.REDIS_URL || undefined
  const clusterNodes = env.KEYWRAP_REDIS_CLUSTER_NODES ? env.KEYWRAP_REDIS_CLUSTER_NODES.split(',').map((node) => node.trim()) : undefined
  const sentinels = env.KEYWRAP_REDIS_SENTINELS ? parseSentinels(env.KEYWRAP_REDIS_SENTINELS, violations) : undefined
  if (!url && !clusterNodes && !sentinels) return undefined
  if (url && !/^rediss?:\/\//.test(url)) violations.push('REDIS_URL is not a redis:// or rediss:// URL')
  if (sentinels && !env.KEYWRAP_REDIS_SENTINEL_NAME) violations.push('KEYWRAP_REDIS_SENTINEL_NAME: name the master the sentinels watch')
  const kekAlias = env.KEYWRAP_CACHE_KEK_ALIAS || DEFAULTS.KEYWRAP_CACHE_KEK_ALIAS
  if (!keys[kekAlias]) {
    violations.push(`KEYWRAP_CACHE_KEK_ALIAS="${kekAlias}" is not a configured alias; name the key that wraps the Redis cache's keys`)
  }
  return {
    url,
    clusterNodes,
    sentinels,
    sentinelName: env.KEYWRAP_REDIS_SENTINEL_NAME || undefined,
    sentinelPassword: env.KEYWRAP_REDIS_SENTINEL_PASSWORD || undefined,
    tlsCaFile: env.KEYWRAP_REDIS_TLS_CA_FILE || undefined,
    commandTimeoutMs: setting.integer('KEYWRAP_REDIS_COMMAND_TIMEOUT_MS', DEFAULTS.KEYWRAP_REDIS_COMMAND_TIMEOUT_MS, 5, 5000),
    keyPrefix: setting.pattern('KEYWRAP_REDIS_KEY_PREFIX', /^[A-Za-z0-9:_.-]{1,64}$/, DEFAULTS.KEYWRAP_REDIS_KEY_PREFIX),
    kekAlias,
    epochSeconds: setting.integer('KEYWRAP_CACHE_EPOCH_SECONDS', DEFAULTS.KEYWRAP_CACHE_EPOCH_SECONDS, 60, 30 * 86_400),
    purgeBoundMs: setting.integer('KEYWRAP_CACHE_PURGE_BOUND_MS', DEFAULTS.KEYWRAP_CACHE_PURGE_BOUND_MS, 0, 60_000),
    offlineGraceSeconds: setting.integer('KEYWRAP_CACHE_OFFLINE_GRACE_SECONDS', DEFAULTS.KEYWRAP_CACHE_OFFLINE_GRACE_SECONDS, 0, 86_400),
  }
}

function parseSentinels(text: string, violations: string[]): { host: string; port: number }[] {
  return text.split(',').map((entry) => {
    const match = /^\s*([^:\s]+):(\d{1,5})\s*$/.exec(entry)
    if (!match) violations.push(`KEYWRAP_REDIS_SENTINELS: "${entry}" is not host:port`)
    return { host: match?.[1] ?? '', port: Number(match?.[2] ?? 0) }
  })
}

class SettingReader {
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly violations: string[],
  ) {}

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name]
    if (raw === undefined || raw === '') return fallback
    const value = Number(raw)
    if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
      this.violations.push(`${name}="${raw}" must be a whole number from ${min} to ${max}`)
      return fallback
    }
    return value
  }

  boolean(name: string, fallback: boolean): boolean {
    const raw = this.env[name]
    if (raw === undefined || raw === '') return fallback
    if (raw === 'true' || raw === '1') return true
    if (raw === 'false' || raw === '0') return false
    this.violations.push(`${name}="${raw}" must be true or false`)
    return fallback
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.env[name]
    if (raw === undefined || raw === '') return fallback
    if ((allowed as readonly string[]).includes(raw)) return raw as T
    this.violations.push(`${name}="${raw}" must be one of ${allowed.join(', ')}`)
    return fallback
  }

  pattern(name: string, pattern: RegExp, fallback: string): string {
    const raw = this.env[name]
    if (raw === undefined || raw === '') return fallback
    if (pattern.test(raw)) return raw
    this.violations.push(`${name}="${raw}" must match ${pattern}`)
    return fallback
  }
}

type Json = Record<string, unknown>

function readConfigFile(path: string, violations: string[]): Json {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    violations.push(`KEYWRAP_CONFIG=${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
    return {}
  }
  try {
    const parsed: unknown = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text)
    if (isObject(parsed)) return parsed
    violations.push(`KEYWRAP_CONFIG=${path} must hold an object with keys, auth and policy sections`)
  } catch (error) {
    violations.push(`KEYWRAP_CONFIG=${path} is not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(error as Error).message}`)
  }
  return {}
}

function readKeys(section: unknown, mode: Mode, violations: string[]): Record<string, string> {
  const keys: Record<string, string> = {}
  if (section !== undefined && !isObject(section)) {
    violations.push('keys must be an object mapping each alias to a provider URI')
    return keys
  }
  for (const [alias, uri] of Object.entries(section ?? {})) {
    if (!ALIAS.test(alias)) violations.push(`keys.${alias}: an alias is 1-63 of a-z, 0-9, "-" and "_", starting with a letter or digit`)
    else if (typeof uri !== 'string' || !(LOCAL_URI.test(uri) || GCP_KMS_URI.test(uri))) {
      violations.push(`keys.${alias}: "${String(uri)}" is neither local://NAME nor gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K`)
    } else keys[alias] = uri
  }
  // The embedded default always serves alias `default`, so the README's first curl works on any config.
  if (mode === 'development' && !('default' in (section ?? {}))) keys.default = 'local://default'
  if (Object.keys(keys).length === 0)
    violations.push(`keys must name at least one alias (KEYWRAP_CONFIG ${mode === 'production' ? 'is required in production' : 'has none'})`)
  return keys
}

function readPolicy(section: unknown, violations: string[]): Config['policy'] {
  if (section === undefined) return undefined
  if (!isObject(section) || !Array.isArray(section.grants)) {
    violations.push('policy must be an object with a grants array')
    return { grants: [] }
  }
  const grants: Grant[] = []
  section.grants.forEach((raw: unknown, index: number) => {
    const where = `policy.grants[${index}]`
    if (!isObject(raw)) {
      violations.push(`${where} must be an object with principals, keys and operations`)
      return
    }
    for (const field of Object.keys(raw)) {
      if (!GRANT_FIELDS.includes(field)) violations.push(`${where}.${field} is not a grant field (known: ${GRANT_FIELDS.join(', ')})`)
    }
    const principals = stringList(raw.principals, `${where}.principals`, violations)
    const keys = stringList(raw.keys, `${where}.keys`, violations)
    const operations = stringList(raw.operations, `${where}.operations`, violations)
    for (const operation of operations) {
      if (operation !== '*' && !isPermission(operation)) violations.push(`${where}.operations: "${operation}" is not an operation`)
    }
    if (raw.issuer !== undefined && typeof raw.issuer !== 'string') violations.push(`${where}.issuer must be a string`)
    const grant: Grant = { principals, keys, operations: operations as Grant['operations'], ...readGrantConditions(raw, where, violations) }
    grants.push(typeof raw.issuer === 'string' ? { ...grant, issuer: raw.issuer } : grant)
  })
  return { grants }
}

function stringList(value: unknown, where: string, violations: string[]): string[] {
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string' && item.length > 0)) return value
  violations.push(`${where} must be a non-empty list of strings`)
  return []
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}
