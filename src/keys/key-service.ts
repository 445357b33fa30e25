/**
 * The four key operations, written once and used by the single and the batch routes alike. Each call
 * is one key access: authorised (principal × alias × operation), run, and audited before its result is
 * returned. Nothing here knows about HTTP.
 */
import type { AuditSink } from '../audit/audit-sink.js'
import { boundedEntry } from '../audit/bounded-entry.js'
import { WrappedKeyFingerprints } from '../audit/fingerprint.js'
import type { TraceContext } from '../audit/trace-context.js'
import type { AuditEntry, CacheLevel } from '../audit/audit-entry.js'
import type { Policy, Refusal } from '../auth/policy.js'
import type { Principal } from '../auth/principal.js'
import type { DekCache, DekCacheKey } from '../cache/dek-cache.js'
import { SingleFlight } from '../cache/single-flight.js'
import { encodeAad, isWellFormedContext, type EncryptionContext } from '../crypto/context.js'
import { generateDataKey, type DataKeySize } from '../crypto/data-key.js'
import { formatWrappedKey, parseWrappedKey, type WrappedKey } from '../crypto/wrapped-key.js'
import { isKeywrapError, KeywrapError } from '../errors.js'
import { assertUsableVersion, type KeyDescription, type KeyProvider, type KeyVersionInfo } from '../providers/key-provider.js'
import type { KeyRegistry } from '../providers/key-registry.js'
import type { Metrics } from '../metrics/metrics.js'
import { GENERATE_WITHOUT_PLAINTEXT, OPERATIONS, type KeyAccessEntry } from '../operations.js'
import { VersionUses, type VersionUse } from './version-uses.js'
import { FailedUnwraps } from './failed-unwraps.js'
import { ProviderGate } from './provider-gate.js'
import { DEFAULTS } from '../config/load-config.js'

/** Who is asking and about which request; what the audit entry needs besides the operation. */
export interface Caller {
  readonly principal: Principal
  readonly requestId: string
  /** The X-Request-ID the client sent, if any (the server's own id is requestId). */
  readonly clientRequestId?: string
  readonly remoteAddress?: string
  /** The socket's peer when it differs from remoteAddress (a proxy that forwarded the request). */
  readonly peerAddress?: string
  readonly userAgent?: string
  readonly trace?: TraceContext
  /** Why the caller says it makes the call (x-keywrap-reason): recorded, and what grants with requireReason ask for. */
  readonly reason?: string
}

/** Errors a key access has already recorded in the audit trail (the refusal audit skips them). */
const AUDITED = new WeakSet<KeywrapError>()

export function wasAudited(error: unknown): boolean {
  return isKeywrapError(error) && AUDITED.has(error)
}

/** A request refused before it reached a key: its caller is not known (401) or not yet checked. */
export type RefusedRequest = Omit<Caller, 'principal'> & { readonly principal?: Principal | undefined }

export interface RefusalDetails {
  /** Why, in words (a refused token's reason, a validation error). */
  readonly reason?: string
  /** The issuer a refused token claims (not verified). */
  readonly claimedIssuer?: string
  /** Refusals of the same address not recorded one by one (the failed-authentication limit). */
  readonly unrecorded?: number
}

export interface WrapResult {
  readonly wrappedKey: string
  readonly keyVersion: string
}
export interface GenerateResult extends WrapResult {
  readonly plaintext?: Buffer
}
export interface UnwrapResult {
  readonly plaintext: Buffer
  readonly keyVersion: string
  readonly primary: boolean
}
export interface RewrapResult extends WrapResult {
  readonly rewrapped: boolean
}
export interface WrappedKeyInput {
  readonly wrappedKey: string
  readonly context?: EncryptionContext
}

export interface KeyServiceDependencies {
  readonly registry: KeyRegistry
  readonly cache: DekCache
  readonly policy: Policy
  readonly audit: AuditSink
  /** HMAC key of the wrapped-key fingerprints in audit entries. */
  readonly fingerprintKey: Buffer
  readonly metrics?: Metrics
  /** The process-wide cap on concurrent provider calls; default: 128 running, 256 waiting. */
  readonly providerGate?: ProviderGate
}

/** A presented wrapped key, parsed, with the KEK version it names (usable) and the key's description. */
interface UsableWrappedKey {
  readonly wrapped: WrappedKey
  readonly version: KeyVersionInfo
  readonly description: KeyDescription
}

/** What an operation reports to its audit entry besides success or failure. */
interface AccessRecord {
  keyVersion?: string
  /** The version the access used: of the key presented (unwrap, rewrap), or the one that wrapped. */
  usedVersion?: number
  /** Rewrap: the full name of the version of the key presented (keyVersion names the one that wrapped). */
  sourceKeyVersion?: string
  cacheLevel?: CacheLevel
  /** The wrapped key the access used or produced, and the one a rewrap produced; fingerprinted in the entry. */
  wrappedKey?: string
  rewrappedKey?: string
}

/** Items of one batch in flight at once: enough to hide provider latency, few enough to respect KMS quota. */
export const BATCH_PARALLELISM = 64
const FRESHEN_INTERVAL_MS = 5000

/** An item of a batch: the batch operation and the item's place in it. */
interface BatchItem {
  readonly operation: KeyAccessEntry
  readonly index: number
}

/** What an access is about, as its audit entry names it. */
interface AccessRequest {
  /** The catalogue's entry: the permission checked and the audit entry's operation. */
  readonly operation: KeyAccessEntry
  readonly context?: EncryptionContext | undefined
  readonly batchIndex?: number | undefined
  /** The wrapped key presented (unwrap, rewrap). */
  readonly wrappedKey?: string
  /** Refused before it began (the rate limit): audited as denied with this error. */
  readonly refusal?: KeywrapError
  /** Items of a batch refused whole, in one entry. */
  readonly batchSize?: number | undefined
  /** The operation takes no context (a purge): the grants' context conditions do not concern it. */
  readonly contextFree?: true
}

export class KeyService {
  private readonly deps: KeyServiceDependencies
  private readonly unwrapFlights = new SingleFlight<{ plaintext: Buffer; version: number }>()
  private readonly freshenFlights = new SingleFlight<KeyDescription>()
  /** Each provider's last metadata read for an unseen version: when, and whether it succeeded. */
  private readonly lastFreshened = new WeakMap<KeyProvider, { readonly at: number; readonly confirmed: boolean }>()
  private readonly fingerprints: WrappedKeyFingerprints
  private readonly uses: VersionUses
  private readonly failedUnwraps = new FailedUnwraps()
  private readonly gate: ProviderGate

  constructor(deps: KeyServiceDependencies) {
    this.deps = deps
    this.gate = deps.providerGate ?? new ProviderGate({ concurrency: DEFAULTS.KEYWRAP_PROVIDER_MAX_CONCURRENT, queue: DEFAULTS.KEYWRAP_PROVIDER_MAX_QUEUED })
    this.fingerprints = new WrappedKeyFingerprints(deps.fingerprintKey)
    this.uses = new VersionUses(deps.metrics)
  }

  generateDataKey(
    caller: Caller,
    alias: string,
    input: { context?: EncryptionContext; bytes: DataKeySize; includePlaintext: boolean },
  ): Promise<GenerateResult> {
    // Wrapped only is its own operation: granted alone to producers that must never see a DEK.
    const operation = input.includePlaintext ? OPERATIONS.generateDataKey : GENERATE_WITHOUT_PLAINTEXT
    return this.access(caller, alias, { operation, context: input.context }, async (provider, record) => {
      const plaintext = generateDataKey(input.bytes)
      const wrapped = await this.wrapAndCache(alias, provider, plaintext, input.context, record)
      return input.includePlaintext ? { ...wrapped, plaintext } : wrapped
    })
  }

  /** `plaintext` may be the error its decoding gave: it is reported after authorisation, as a failed access. */
  wrap(caller: Caller, alias: string, input: { plaintext: Buffer | KeywrapError; context?: EncryptionContext }): Promise<WrapResult> {
    return this.access(caller, alias, { operation: OPERATIONS.wrap, context: input.context }, (provider, record) => {
      if (input.plaintext instanceof KeywrapError) throw input.plaintext
      return this.wrapAndCache(alias, provider, input.plaintext, input.context, record)
    })
  }

  unwrap(caller: Caller, alias: string, input: WrappedKeyInput, batch?: BatchItem): Promise<UnwrapResult> {
    const request = { operation: batch?.operation ?? OPERATIONS.unwrap, context: input.context, batchIndex: batch?.index, wrappedKey: input.wrappedKey }
    return this.access(caller, alias, request, async (provider, record) => {
      const { wrapped, version, description } = await this.usableWrappedKey(provider, input.wrappedKey, record)
      const dek = await this.unwrapCached(alias, provider, wrapped, input, record)
      return { plaintext: dek, keyVersion: version.name, primary: version.version === description.primaryVersion }
    })
  }

  rewrap(caller: Caller, alias: string, input: WrappedKeyInput, batch?: BatchItem): Promise<RewrapResult> {
    const request = { operation: batch?.operation ?? OPERATIONS.rewrap, context: input.context, batchIndex: batch?.index, wrappedKey: input.wrappedKey }
    return this.access(caller, alias, request, async (provider, record) => {
      const { wrapped, version, description } = await this.usableWrappedKey(provider, input.wrappedKey, record)
      record.sourceKeyVersion = version.name
      // Authenticated even when there is nothing to do (a cache hit costs no provider call), so that a
      // rotation job is never told that a tampered key, or one presented with the wrong context, is current.
      const dek = await this.unwrapCached(alias, provider, wrapped, input, record)
      if (version.version === description.primaryVersion) {
        return { wrappedKey: input.wrappedKey, keyVersion: version.name, rewrapped: false }
      }
      const rewrapped = await this.wrapAndCache(alias, provider, dek, input.context, record)
      record.wrappedKey = input.wrappedKey
      record.rewrappedKey = rewrapped.wrappedKey
      return { ...rewrapped, rewrapped: true }
    })
  }

  /** Items that are already errors (invalid input) keep their place in the results and are not processed. */
  batchUnwrap(caller: Caller, alias: string, items: readonly (WrappedKeyInput | KeywrapError)[]): Promise<(UnwrapResult | KeywrapError)[]> {
    const ungranted = this.refuseUngrantedBatch(caller, alias, OPERATIONS.batchUnwrap, items.length)
    if (ungranted) return ungranted
    return mapSettled(items, (item, index) => {
      const batch = { operation: OPERATIONS.batchUnwrap, index }
      return item instanceof KeywrapError ? this.refuseItem(caller, alias, batch, item) : this.unwrap(caller, alias, item, batch)
    })
  }

  batchRewrap(caller: Caller, alias: string, items: readonly (WrappedKeyInput | KeywrapError)[]): Promise<(RewrapResult | KeywrapError)[]> {
    const ungranted = this.refuseUngrantedBatch(caller, alias, OPERATIONS.batchRewrap, items.length)
    if (ungranted) return ungranted
    return mapSettled(items, (item, index) => {
      const batch = { operation: OPERATIONS.batchRewrap, index }
      return item instanceof KeywrapError ? this.refuseItem(caller, alias, batch, item) : this.rewrap(caller, alias, item, batch)
    })
  }

  /**
   * A caller that no grant allows the batch's operation on the alias, whatever the items' contexts (no
   * grant, or a reason required and not given): one 403 and one audit entry, before any item is looked
   * at. Context conditions are left to each item, so that the items that meet them go through.
   */
  private refuseUngrantedBatch(caller: Caller, alias: string, operation: KeyAccessEntry, batchSize: number): Promise<never> | undefined {
    const refusal = this.deps.policy.refusal(caller.principal, alias, operation.permission, { reason: caller.reason })
    if (!refusal) return undefined
    return this.access(caller, alias, { operation, refusal: refusalError(refusal), batchSize }, async () => undefined) as Promise<never>
  }

  /** An invalid batch item is still an attempt at a key access: authorised and audited like the others. */
  private refuseItem(caller: Caller, alias: string, batch: BatchItem, invalid: KeywrapError): Promise<never> {
    // Its context is not known: the grant, not its context conditions, decides whether it is told so.
    return this.access(caller, alias, { operation: batch.operation, batchIndex: batch.index, contextFree: true }, async () => {
      throw invalid
    })
  }

  /** Drops every cached DEK of the alias, here and fleet-wide; audited like a key access. */
  purgeCache(caller: Caller, alias: string): Promise<void> {
    return this.access(caller, alias, { operation: OPERATIONS.purgeCache, contextFree: true }, async (_provider, record) => {
      record.cacheLevel = 'none'
      await this.deps.cache.purge(alias)
    })
  }

  /** A key access refused before it ran (the rate limit, a KMS plugin's unknown key_id), audited as denied; a batch refused whole in one entry. */
  async recordRefused(caller: Caller, alias: string, operation: KeyAccessEntry, refusal: KeywrapError, batchSize?: number): Promise<void> {
    await this.access(caller, alias, { operation, refusal, batchSize }, async () => undefined).catch(() => undefined)
  }

  /**
   * A request on a key route refused before it reached a key (authentication, validation, body limits,
   * the failed-authentication limit), audited like a key access: 401, 403 and 429 as denied, the
   * others as failed. Nothing was released, so nobody waits on the entry and its failure is only counted.
   */
  async recordRefusal(refused: RefusedRequest, alias: string, operation: KeyAccessEntry, error: KeywrapError, details: RefusalDetails = {}): Promise<void> {
    const outcome = error.status === 401 || error.status === 403 || error.status === 429 ? 'denied' : 'failed'
    this.deps.metrics?.keyAccesses.inc({ operation: operation.audit, outcome })
    await this.writeAudit({
      time: new Date().toISOString(),
      operation: operation.audit,
      principal: refused.principal?.id,
      issuer: refused.principal?.issuer ?? details.claimedIssuer,
      alias,
      keyVersion: undefined,
      outcome,
      errorCode: error.code,
      cacheLevel: undefined,
      context: undefined,
      batchIndex: undefined,
      reason: details.reason ?? error.detail ?? error.message,
      ...(details.unrecorded !== undefined && { unrecorded: details.unrecorded }),
      ...requestFields(refused),
      latencyMs: 0,
    }).catch(() => undefined)
  }

  /** Throws unless the caller may read /metrics (a grant of metrics.read on any key pattern, with its reason if it requires one). */
  authoriseMetrics(caller: Pick<Caller, 'principal' | 'reason'>): void {
    const refusal = this.deps.policy.unscopedRefusal(caller.principal, OPERATIONS.getMetrics.permission, { reason: caller.reason })
    if (refusal) throw new KeywrapError(refusal.code, refusal.code === 'forbidden' ? 'You may not read metrics.' : refusal.detail)
  }

  /** The aliases the caller holds any grant on (those whose grants require a reason only if it gave one). */
  listKeys(caller: Pick<Caller, 'principal' | 'reason'>): string[] {
    return this.deps.registry.aliases().filter((alias) => this.deps.policy.allowsAny(caller.principal, alias, { reason: caller.reason }))
  }

  /** When the per-version use counts of versionUse() started (this instance's start). */
  get usesSince(): string {
    return this.uses.since
  }

  /** The uses of one version since usesSince; ask after describeKey(), which authorises. */
  versionUse(alias: string, version: number): VersionUse | undefined {
    return this.uses.of(alias, version)
  }

  describeKey(caller: Pick<Caller, 'principal' | 'reason'>, alias: string): KeyDescription {
    const refusal = this.deps.policy.refusal(caller.principal, alias, OPERATIONS.getKey.permission, { reason: caller.reason })
    if (refusal) throw new KeywrapError(refusal.code, refusal.code === 'forbidden' ? `You may not read key "${alias}".` : refusal.detail)
    const provider = this.deps.registry.get(alias)
    if (!provider) throw new KeywrapError('key_not_found', `No key has the alias "${alias}".`)
    try {
      return provider.describe()
    } catch (error) {
      throw new KeywrapError('provider_unavailable', `Key "${alias}" has not been read from its provider yet.`, { cause: error, retryAfterSeconds: 5 })
    }
  }

  /**
   * Authorise, run and audit one key access. Authorisation comes before the alias lookup so that a
   * caller learns nothing about aliases it holds no grant on.
   */
  private async access<T>(caller: Caller, alias: string, request: AccessRequest, run: (provider: KeyProvider, record: AccessRecord) => Promise<T>): Promise<T> {
    const { context, batchIndex } = request
    const operation = request.operation.audit
    const started = performance.now()
    // The wrapped key presented is fingerprinted even when the access is denied or fails.
    const record: AccessRecord = request.wrappedKey === undefined ? {} : { wrappedKey: request.wrappedKey }
    const audit = (outcome: AuditEntry['outcome'], error?: KeywrapError) => {
      this.deps.metrics?.keyAccesses.inc({ operation, outcome })
      const written = this.writeAudit({
        time: new Date().toISOString(),
        operation,
        principal: caller.principal.id,
        issuer: caller.principal.issuer,
        alias,
        keyVersion: record.keyVersion,
        sourceKeyVersion: record.sourceKeyVersion,
        outcome,
        errorCode: error?.code,
        cacheLevel: record.cacheLevel,
        context,
        wrappedKeyFingerprint: this.fingerprint(record.wrappedKey, request.wrappedKey),
        rewrappedKeyFingerprint: this.fingerprint(record.rewrappedKey, request.wrappedKey),
        batchIndex,
        ...(request.batchSize !== undefined && { batchSize: request.batchSize }),
        // A refused condition says which, as the caller was told.
        ...(error && error.status === 403 && error.code !== 'forbidden' && error.detail !== undefined && { reason: error.detail }),
        ...requestFields(caller),
        latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
      })
      return error ? written.then(() => void AUDITED.add(error)) : written
    }

    if (request.refusal) {
      await audit('denied', request.refusal)
      throw request.refusal
    }
    // A request without a context is checked as an empty one: a grant that requires a context key refuses it.
    const circumstances = { context: request.contextFree ? undefined : (context ?? {}), reason: caller.reason }
    const refusal = this.deps.policy.refusal(caller.principal, alias, request.operation.permission, circumstances)
    if (refusal) {
      const denied = refusalError(refusal)
      await audit('denied', denied)
      throw denied
    }
    let result: T
    try {
      if (!isWellFormedContext(context)) {
        throw new KeywrapError('invalid_request', 'The context holds a lone UTF-16 surrogate; send well-formed strings.')
      }
      const provider = this.deps.registry.get(alias)
      if (!provider) throw new KeywrapError('key_not_found', `No key has the alias "${alias}".`)
      result = await run(provider, record)
    } catch (error) {
      const failure = isKeywrapError(error) ? error : new KeywrapError('internal', undefined, { cause: error })
      await audit('failed', failure)
      throw failure
    }
    await audit('allowed')
    if (record.usedVersion !== undefined && operation !== 'cache.purge') this.uses.record(alias, record.usedVersion, operation)
    return result
  }

  /** A presented wrapped key is likely to come again (a hot DEK); one just produced is new, so nothing is remembered of it. */
  private fingerprint(wrappedKey: string | undefined, presented: string | undefined): string | undefined {
    if (wrappedKey === undefined) return undefined
    return wrappedKey === presented ? this.fingerprints.of(wrappedKey) : this.fingerprints.ofNew(wrappedKey)
  }

  /** The sink's promise with its failure named, without an async frame of its own (every access waits on it). */
  private writeAudit(entry: AuditEntry): Promise<void> {
    const unavailable = (error: unknown) => {
      throw new KeywrapError('audit_unavailable', undefined, { cause: error, retryAfterSeconds: 1 })
    }
    try {
      return this.deps.audit.write(boundedEntry(entry)).then(undefined, unavailable)
    } catch (error) {
      return Promise.reject(error).then(undefined, unavailable)
    }
  }

  /**
   * Parses the wrapped key and checks, from the last refresh, that its version may be used. A version
   * newer than any this instance knows was made after its last refresh (another instance saw the
   * rotation first), so the key's metadata is read again then, at most once per FRESHEN_INTERVAL_MS.
   */
  private async usableWrappedKey(provider: KeyProvider, text: string, record: AccessRecord): Promise<UsableWrappedKey> {
    const wrapped = parseWrappedKey(text)
    // Its format is known without any key: not one is bad input, told apart from a failed authentication.
    if (!wrapped)
      throw new KeywrapError('invalid_wrapped_key', 'A wrapped key is kw1.<version>.<ciphertext in unpadded base64url>, as wrap and generateDataKey return it.')
    const description = provider.describe()
    if (description.versions.some((v) => v.version >= wrapped.version)) return this.usableVersion(wrapped, description, true, record)
    const freshened = await this.freshen(provider)
    return this.usableVersion(wrapped, freshened.description, freshened.confirmed, record)
  }

  private usableVersion(wrapped: WrappedKey, description: KeyDescription, confirmed: boolean, record: AccessRecord): UsableWrappedKey {
    const version = description.versions.find((v) => v.version === wrapped.version)
    if (!version && !confirmed) {
      // Not known yet and the provider could not be asked just now: a retry may succeed.
      throw new KeywrapError('provider_unavailable', 'This key version is not known to this instance yet; try again.', { retryAfterSeconds: 5 })
    }
    if (!version) throw new KeywrapError('cannot_unwrap')
    record.keyVersion = version.name
    record.usedVersion = version.version
    assertUsableVersion(version.version, version.state)
    return { wrapped, version, description }
  }

  /**
   * Re-reads the key's metadata at most once per FRESHEN_INTERVAL_MS, failed reads included: a flood of
   * forged versions costs one read per alias per interval whatever the provider answers.
   */
  private async freshen(provider: KeyProvider): Promise<{ description: KeyDescription; confirmed: boolean }> {
    const last = this.lastFreshened.get(provider)
    if (last && Date.now() - last.at < FRESHEN_INTERVAL_MS) return { description: provider.describe(), confirmed: last.confirmed }
    let confirmed = false
    try {
      const description = await this.freshenFlights.run(provider.uri, () => this.gate.run(() => provider.refresh()))
      confirmed = true
      return { description, confirmed }
    } catch {
      return { description: provider.describe(), confirmed }
    } finally {
      this.lastFreshened.set(provider, { at: Date.now(), confirmed })
    }
  }

  private async unwrapCached(alias: string, provider: KeyProvider, wrapped: WrappedKey, input: WrappedKeyInput, record: AccessRecord): Promise<Buffer> {
    const key: DekCacheKey = { alias, wrappedKey: input.wrappedKey, aad: encodeAad(alias, wrapped.version, input.context) }
    const hit = await this.deps.cache.get(key)
    if (hit && hit.version === wrapped.version) {
      record.cacheLevel = hit.level
      return hit.plaintext
    }
    record.cacheLevel = 'provider'
    // One that failed authentication a moment ago fails again: no provider call to learn it.
    if (this.failedUnwraps.has(alias, input.wrappedKey, key.aad)) {
      record.cacheLevel = 'none'
      throw new KeywrapError('cannot_unwrap')
    }
    const flightKey = `${alias}\0${input.wrappedKey}\0${key.aad.toString('base64')}`
    if (this.unwrapFlights.isRunning(flightKey)) {
      this.deps.metrics?.cacheCoalescedWaits.inc()
      this.deps.metrics?.providerCallsSaved.inc()
    }
    const { plaintext } = await this.unwrapFlights.run(flightKey, async () => {
      const decrypted = await this.gate
        .run(() => provider.decrypt(wrapped.ciphertext, key.aad, wrapped.version))
        .catch((error: unknown) => {
          if (isKeywrapError(error) && error.code === 'cannot_unwrap') this.failedUnwraps.remember(alias, input.wrappedKey, key.aad)
          throw error
        })
      if (decrypted.version !== undefined && decrypted.version !== wrapped.version) {
        this.failedUnwraps.remember(alias, input.wrappedKey, key.aad)
        throw new KeywrapError('cannot_unwrap')
      }
      const dek = { plaintext: decrypted.plaintext, version: wrapped.version }
      await this.deps.cache.set(key, dek)
      return dek
    })
    return plaintext
  }

  private async wrapAndCache(
    alias: string,
    provider: KeyProvider,
    plaintext: Buffer,
    context: EncryptionContext | undefined,
    record: AccessRecord,
  ): Promise<WrapResult> {
    // The AAD names the version that will encrypt, which Cloud KMS chooses (its primary) and reports
    // afterwards: if the primary moved since the last refresh, encrypt again under the right AAD.
    let assumed = provider.describe().primaryVersion
    let aad = encodeAad(alias, assumed, context)
    let { ciphertext, version } = await this.gate.run(() => provider.encrypt(plaintext, aad))
    for (let attempt = 0; version !== assumed && attempt < 2; attempt++) {
      assumed = version
      aad = encodeAad(alias, assumed, context)
      ;({ ciphertext, version } = await this.gate.run(() => provider.encrypt(plaintext, aad)))
    }
    if (version !== assumed) throw new KeywrapError('provider_unavailable', 'The key’s primary version keeps changing; try again.', { retryAfterSeconds: 1 })
    const versionInfo = provider.describe().versions.find((v) => v.version === version)
    const keyVersion = versionInfo?.name ?? `${provider.uri}/versions/${version}`
    record.keyVersion = keyVersion
    record.usedVersion ??= version
    record.cacheLevel ??= 'provider'
    const wrappedKey = formatWrappedKey({ version, ciphertext })
    record.wrappedKey = wrappedKey
    await this.deps.cache.set({ alias, wrappedKey, aad }, { plaintext, version })
    return { wrappedKey, keyVersion }
  }
}

/** The fields of an audit entry that describe the request. */
function requestFields(
  caller: RefusedRequest,
): Pick<AuditEntry, 'requestId' | 'clientRequestId' | 'trace' | 'spanId' | 'remoteAddress' | 'peerAddress' | 'userAgent' | 'callerReason'> {
  return {
    ...(caller.reason !== undefined && { callerReason: caller.reason }),
    requestId: caller.requestId,
    clientRequestId: caller.clientRequestId,
    trace: caller.trace?.trace,
    spanId: caller.trace?.spanId,
    remoteAddress: caller.remoteAddress,
    peerAddress: caller.peerAddress,
    userAgent: caller.userAgent,
  }
}

function refusalError(refusal: Refusal): KeywrapError {
  return new KeywrapError(refusal.code, refusal.detail)
}

/** Runs `work` over the items with bounded parallelism; a failed item becomes its error, in order. */
async function mapSettled<I, R>(items: readonly I[], work: (item: I, index: number) => Promise<R>): Promise<(R | KeywrapError)[]> {
  const results = new Array<R | KeywrapError>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      try {
        results[index] = await work(items[index]!, index)
      } catch (error) {
        results[index] = isKeywrapError(error) ? error : new KeywrapError('internal', undefined, { cause: error })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(BATCH_PARALLELISM, items.length) }, worker))
  return results
}
