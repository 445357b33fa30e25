/**
 * keywrap's configuration: one typed, validated, frozen object, read once at start-up from the
 * environment and the optional KEYWRAP_CONFIG file. This is the only module that reads process.env.
 */
import type { AuditSinkSetting } from './audit-sink-setting.js'
import type { Permission } from '../operations.js'
import type { AuthSettings } from './auth-settings.js'

export type Mode = 'development' | 'production'

/**
 * What a grant requires of one context entry: a pattern its value must match (`*` for any run of
 * characters, as in `keys`), or the value of a claim of the caller's token it must equal.
 */
export type ContextCondition = string | { readonly claim: string }

export interface Grant {
  readonly principals: readonly string[]
  readonly keys: readonly string[]
  readonly operations: readonly (Permission | '*')[]
  readonly issuer?: string
  /** Context key → condition: each key must be in the request's context and meet its condition; other keys are free. */
  readonly context?: Readonly<Record<string, ContextCondition>>
  /** Calls under this grant must say why (the x-keywrap-reason header). */
  readonly requireReason?: boolean
}

export interface Config {
  readonly mode: Mode
  readonly host: string
  readonly port: number
  /** Directory for the embedded default's state: local keyring and development issuer. */
  readonly home: string
  readonly configFile: string | undefined
  /** alias → provider URI (local://NAME or gcp-kms://projects/…/cryptoKeys/…). */
  readonly keys: Readonly<Record<string, string>>
  readonly keyRefreshSeconds: number
  readonly cache: { readonly ttlSeconds: number; readonly maxEntries: number }
  /** The shared L2 cache; undefined: L1 only. */
  readonly redis: RedisSettings | undefined
  readonly auth: AuthSettings
  /** Requests per window per principal; undefined: no rate limit. */
  readonly rateLimit: { readonly max: number; readonly windowSeconds: number } | undefined
  /** The pre-authentication limit: failed authentications per client address and window; undefined: off. */
  readonly authFailureLimit: { readonly max: number; readonly windowSeconds: number } | undefined
  /** undefined: no policy section was given (development: the development issuer's principals may do everything). */
  readonly policy: { readonly grants: readonly Grant[] } | undefined
  readonly http: { readonly bodyLimitBytes: number; readonly requestTimeoutMs: number; readonly trustProxy: boolean; readonly maxInFlight: number }
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  readonly audit: {
    readonly logName: string
    /** KEYWRAP_AUDIT_SINK, parsed: stdout, file:PATH or cloud-logging. */
    readonly sink: AuditSinkSetting
    readonly timeoutMs: number
    /** host:port of a plaintext Logging API endpoint (a stand-in) for the cloud-logging sink. */
    readonly emulatorHost: string | undefined
    /** HMAC key of wrapped-key fingerprints; undefined: development's generated KEYWRAP_HOME/audit-fingerprint.key. */
    readonly fingerprintKey: Buffer | undefined
    /** Cloud KMS key version (projects/…/cryptoKeyVersions/N) that signs checkpoints; undefined: the Ed25519 key in KEYWRAP_HOME. */
    readonly signingKey: string | undefined
    /** A checkpoint of each chain every this many seconds while entries are written. */
    readonly checkpointSeconds: number
  }
  readonly googleProjectId: string | undefined
  readonly kms: {
    /** host:port of a plaintext Cloud KMS endpoint (a stand-in or emulator) instead of Google's. */
    readonly emulatorHost: string | undefined
    /** Deadline of one Cloud KMS call. */
    readonly callTimeoutMs: number
    /** Time for all attempts of one operation, retries included. */
    readonly budgetMs: number
  }
  /** The process-wide cap on concurrent key-provider calls and on calls waiting for one. */
  readonly providerCalls: { readonly concurrency: number; readonly queue: number }
}

export interface RedisSettings {
  readonly url: string | undefined
  readonly clusterNodes: readonly string[] | undefined
  readonly sentinels: readonly { readonly host: string; readonly port: number }[] | undefined
  readonly sentinelName: string | undefined
  readonly sentinelPassword: string | undefined
  readonly tlsCaFile: string | undefined
  readonly commandTimeoutMs: number
  readonly keyPrefix: string
  /** Alias of the KEK that wraps each epoch's cache keys. */
  readonly kekAlias: string
  readonly epochSeconds: number
  /** How soon a purge on one instance reaches the others. */
  readonly purgeBoundMs: number
  /** How long an instance that cannot reach Redis keeps serving its L1 (purges may not reach it). */
  readonly offlineGraceSeconds: number
}

/** Project id of log entries when GOOGLE_CLOUD_PROJECT is unset (development only; production requires one). */
export const LOCAL_PROJECT_ID = 'keywrap-local'

export const DEV_ISSUER = 'urn:keywrap:dev'
export const DEFAULT_AUDIENCE = 'keywrap'
/** Issuer of the principal a Kubernetes KMS plugin acts as (`npx keywrap kms-plugin --principal`); grants may name it. */
export const KMS_PLUGIN_ISSUER = 'urn:keywrap:kms-plugin'
