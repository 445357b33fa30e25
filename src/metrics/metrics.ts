/**
 * keywrap's Prometheus metrics, one registry per app instance (tests build many apps; nothing global).
 * Served at GET /metrics to principals granted `metrics.read`.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client'

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

export class Metrics {
  readonly registry = new Registry()

  /** Key accesses by operation and audit outcome. */
  readonly keyAccesses = new Counter({
    name: 'keywrap_key_accesses_total',
    help: 'Key accesses by operation and outcome (allowed, denied, failed).',
    labelNames: ['operation', 'outcome'] as const,
    registers: [this.registry],
  })

  /** Allowed key accesses by the KEK version they used (see src/keys/version-uses.ts). */
  readonly keyVersionUses = new Counter({
    name: 'keywrap_key_version_uses_total',
    help: 'Allowed key accesses by alias, KEK version and operation: unwrap and rewrap count the version of the key presented, generateDataKey and wrap the version that wrapped.',
    labelNames: ['alias', 'key_version', 'operation'] as const,
    registers: [this.registry],
  })

  /** Calls to a key provider (Cloud KMS, local), timed. */
  readonly providerCallSeconds = new Histogram({
    name: 'keywrap_provider_call_seconds',
    help: 'Latency of key provider calls by provider and method (Encrypt, Decrypt, GetCryptoKey, ...).',
    labelNames: ['provider', 'method'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })

  readonly providerFailures = new Counter({
    name: 'keywrap_provider_failures_total',
    help: 'Failed key provider calls by provider, method and code (gRPC status name or keywrap code).',
    labelNames: ['provider', 'method', 'code'] as const,
    registers: [this.registry],
  })

  readonly providerRetries = new Counter({
    name: 'keywrap_provider_retries_total',
    help: 'Provider call attempts retried, by provider, method and reason.',
    labelNames: ['provider', 'method', 'reason'] as const,
    registers: [this.registry],
  })

  /** DEK cache lookups: result is l1, l2 or miss. */
  readonly cacheLookups = new Counter({
    name: 'keywrap_cache_lookups_total',
    help: 'DEK cache lookups by result: l1 (hit), l2 (hit), miss.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })

  readonly cacheCoalescedWaits = new Counter({
    name: 'keywrap_cache_coalesced_waits_total',
    help: 'Unwraps that waited for a concurrent identical provider call instead of making their own.',
    registers: [this.registry],
  })

  readonly providerCallsSaved = new Counter({
    name: 'keywrap_provider_calls_saved_total',
    help: 'Provider calls avoided by the cache or by coalescing.',
    registers: [this.registry],
  })

  readonly redisErrors = new Counter({
    name: 'keywrap_redis_errors_total',
    help: 'Redis errors and timeouts by operation; every one fell back to the provider.',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  })

  readonly authFailures = new Counter({
    name: 'keywrap_auth_failures_total',
    help: 'Refused bearer tokens by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })

  readonly auditWrites = new Histogram({
    name: 'keywrap_audit_write_seconds',
    help: 'Latency of audit entry writes by sink.',
    labelNames: ['sink'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })

  readonly auditFailures = new Counter({
    name: 'keywrap_audit_failures_total',
    help: 'Audit entries that could not be written (the access was refused).',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  })

  readonly httpRequestSeconds = new Histogram({
    name: 'keywrap_http_request_seconds',
    help: 'HTTP request latency by operation and status code.',
    labelNames: ['operation', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'keywrap_' })
  }

  /** Times `call` into providerCallSeconds and counts a failure under `codeOf(error)`. */
  async timeProviderCall<T>(provider: string, method: string, call: () => Promise<T>, codeOf: (error: unknown) => string): Promise<T> {
    const end = this.providerCallSeconds.startTimer({ provider, method })
    try {
      return await call()
    } catch (error) {
      this.providerFailures.inc({ provider, method, code: codeOf(error) })
      throw error
    } finally {
      end()
    }
  }
}
