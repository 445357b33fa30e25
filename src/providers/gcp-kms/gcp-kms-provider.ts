/**
 * gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K: a KEK held in Cloud KMS. The key never
 * leaves KMS; keywrap only asks it to Encrypt and Decrypt DEKs, with CRC32C checks both ways, its own
 * deadlines and retries, and version states read on refresh() rather than per request (KMS read quota
 * is about 300 a minute per project).
 */
import type { KeyManagementServiceClient } from '@google-cloud/kms/build/src/v1/key_management_service_client.js'
import type { CallOptions } from 'google-gax'
import { KeywrapError } from '../../errors.js'
import type { Metrics } from '../../metrics/metrics.js'
import { assertUsableVersion, type DecryptResult, type EncryptResult, type KeyDescription, type KeyProvider } from '../key-provider.js'
import { checksumOf, verifiedEncryptResponse, verifiedPlaintext } from './integrity.js'
import { describeCryptoKey } from './key-metadata.js'
import { classifyFailure, describeFailure, failureCodeOf, toKeywrapError, type KmsMethod } from './kms-errors.js'
import { RefreshOrder } from '../refresh-order.js'
import { ProbeThrottle } from './probe-throttle.js'
import { isCryptoKeyName, versionNumberOf } from './resource-names.js'
import { withRetries, type RetryPolicy } from './retry.js'
import type { Logger } from '../../support/logger.js'

/** The client methods the provider uses; a KeyManagementServiceClient in production. */
export type KmsClient = Pick<KeyManagementServiceClient, 'encrypt' | 'decrypt' | 'getCryptoKey' | 'listCryptoKeyVersions' | 'close'>

export interface GcpKmsKeyProviderOptions {
  /** projects/P/locations/L/keyRings/R/cryptoKeys/K */
  readonly keyName: string
  readonly client: KmsClient
  /** Deadline of one attempt (default 2000 ms). */
  readonly callTimeoutMs?: number
  /** Time for all attempts of one call, backoff included (default 4000 ms). */
  readonly totalBudgetMs?: number
  /** Retries after a failed CRC32C check (default 2). */
  readonly maxIntegrityRetries?: number
  readonly metrics?: Metrics
  readonly logger?: Logger
  /** Jitter source, uniform in [0, 1) (default Math.random). */
  readonly random?: () => number
  /** Clock for the probe's cache, in ms (default Date.now). */
  readonly now?: () => number
}

const PROVIDER = 'gcp-kms'
const PROBE_INTERVAL_MS = 10_000
const PROBE_AAD = Buffer.from('keywrap/probe')
/** Cloud KMS's largest page. */
const LIST_PAGE_SIZE = 1000

export class GcpKmsKeyProvider implements KeyProvider {
  readonly uri: string
  private readonly keyName: string
  private readonly client: KmsClient
  private readonly retryPolicy: RetryPolicy
  private readonly metrics: Metrics | undefined
  private readonly logger: Logger | undefined
  private readonly probeThrottle: ProbeThrottle
  private description: KeyDescription | undefined
  private readonly refreshes = new RefreshOrder()

  constructor(options: GcpKmsKeyProviderOptions) {
    if (!isCryptoKeyName(options.keyName)) {
      throw new Error(`"${options.keyName}" is not a Cloud KMS CryptoKey name (projects/P/locations/L/keyRings/R/cryptoKeys/K).`)
    }
    this.keyName = options.keyName
    this.uri = `gcp-kms://${options.keyName}`
    this.client = options.client
    this.retryPolicy = {
      callTimeoutMs: positive('callTimeoutMs', options.callTimeoutMs ?? 2000),
      totalBudgetMs: positive('totalBudgetMs', options.totalBudgetMs ?? 4000),
      maxIntegrityRetries: options.maxIntegrityRetries ?? 2,
      random: options.random ?? Math.random,
    }
    this.metrics = options.metrics
    this.logger = options.logger
    this.probeThrottle = new ProbeThrottle(() => this.roundTrip(), PROBE_INTERVAL_MS, options.now)
  }

  async encrypt(plaintext: Buffer, aad: Buffer): Promise<EncryptResult> {
    const request = {
      name: this.keyName,
      plaintext,
      additionalAuthenticatedData: aad,
      plaintextCrc32c: checksumOf(plaintext),
      additionalAuthenticatedDataCrc32c: checksumOf(aad),
    }
    return this.call('Encrypt', async (options) => {
      const [response] = await this.client.encrypt(request, options)
      const { ciphertext, name } = verifiedEncryptResponse(response)
      const version = versionNumberOf(this.keyName, name)
      if (version === undefined) {
        this.logger?.error(
          { provider: PROVIDER, keyName: this.keyName, method: 'Encrypt', versionName: name },
          `Cloud KMS encrypted with ${name || 'an unnamed version'}, which is not a version of ${this.keyName}`,
        )
        throw new KeywrapError('provider_misconfigured')
      }
      this.learnPrimary(version, name)
      return { ciphertext, version }
    })
  }

  /** Cloud KMS finds the version in the ciphertext and does not name it in its answer, so none is returned. */
  async decrypt(ciphertext: Buffer, aad: Buffer, version: number): Promise<DecryptResult> {
    this.refuseUnusable(version)
    const request = {
      name: this.keyName,
      ciphertext,
      ciphertextCrc32c: checksumOf(ciphertext),
      additionalAuthenticatedData: aad,
      additionalAuthenticatedDataCrc32c: checksumOf(aad),
    }
    return this.call('Decrypt', async (options) => {
      const [response] = await this.client.decrypt(request, options)
      return { plaintext: verifiedPlaintext(response) }
    })
  }

  describe(): KeyDescription {
    if (!this.description) throw new Error(`${this.uri} is used before its first refresh.`)
    return this.description
  }

  async refresh(): Promise<KeyDescription> {
    const read = this.refreshes.begin()
    try {
      const [key] = await this.call('GetCryptoKey', (options) => this.client.getCryptoKey({ name: this.keyName }, options))
      const versions = []
      let pageToken = ''
      do {
        const request = { parent: this.keyName, pageSize: LIST_PAGE_SIZE, pageToken }
        const [page, , response] = await this.call('ListCryptoKeyVersions', (options) =>
          this.client.listCryptoKeyVersions(request, { ...options, autoPaginate: false }),
        )
        versions.push(...page)
        pageToken = response?.nextPageToken ?? ''
      } while (pageToken)
      if (this.refreshes.isNewest(read)) this.description = describeCryptoKey(this.uri, this.keyName, key, versions, new Date())
      return this.description!
    } catch (error) {
      // Refreshes run in the background; their errors are read by operators (logs, /readyz), not callers.
      const cause = error instanceof KeywrapError && error.cause !== undefined ? error.cause : error
      throw new Error(`Cloud KMS key ${this.keyName} cannot be read: ${describeFailure(cause)}`, { cause: error })
    }
  }

  probe(): Promise<void> {
    return this.probeThrottle.run()
  }

  async close(): Promise<void> {
    await this.client.close()
  }

  private async roundTrip(): Promise<void> {
    const { ciphertext, version } = await this.encrypt(Buffer.alloc(32), PROBE_AAD)
    await this.decrypt(ciphertext, PROBE_AAD, version)
  }

  /**
   * One KMS call under the retry policy. Each attempt is timed and counted as a KMS call, with its
   * response checks inside, so a failed check counts as a failed call (DATA_LOSS) and is retried.
   */
  private async call<T>(method: KmsMethod, attempt: (options: CallOptions) => Promise<T>): Promise<T> {
    const metrics = this.metrics
    const timed = (timeout: number) => {
      // retry: null keeps gax to exactly one attempt with this deadline (its own retries would use the
      // deadline as a total budget, and maxRetries: 0 would change the client's shared settings).
      const once = () => attempt({ retry: null, timeout })
      return metrics ? metrics.timeProviderCall(PROVIDER, method, once, failureCodeOf) : once()
    }
    const onRetry = (error: unknown) => metrics?.providerRetries.inc({ provider: PROVIDER, method, reason: failureCodeOf(error) })
    try {
      return await withRetries(this.retryPolicy, timed, classifyFailure, onRetry)
    } catch (error) {
      throw toKeywrapError(error, { keyName: this.keyName, method, logger: this.logger })
    }
  }

  /** Refuses, before any call, a version the last refresh saw disabled or destroyed; unknown versions go to KMS. */
  private refuseUnusable(version: number): void {
    const state = this.description?.versions.find((v) => v.version === version)?.state
    if (state !== undefined) assertUsableVersion(version, state)
  }

  /**
   * Encrypt uses the primary, so a version it names that the last refresh has not seen is a rotation
   * since then: record it, so that keys wrapped under it unwrap before the next refresh.
   */
  private learnPrimary(version: number, name: string): void {
    const description = this.description
    if (!description || description.versions.some((v) => v.version === version)) return
    this.description = {
      ...description,
      primaryVersion: version,
      versions: [...description.versions, { version, name, state: 'ENABLED' }],
    }
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number of milliseconds, not ${value}.`)
  return value
}
