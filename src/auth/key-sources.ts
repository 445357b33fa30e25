/**
 * Where an issuer's verification keys come from: a JWKS file or a PEM public key read once at
 * start-up, or a remote JWKS fetched through jose with explicit timeout, cooldown and cache age.
 * Keys never come from the token: jku, x5u, jwk and x5c are refused before a source is asked.
 */
import { createPublicKey } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  importSPKI,
  jwksCache,
  type CompactJWSHeaderParameters,
  type CryptoKey,
  type ExportedJWKSCache,
  type FetchImplementation,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  type RemoteJWKSet,
} from 'jose'
import { algorithmsForKeyType, type AsymmetricAlgorithm } from '../config/algorithms.js'

export interface KeySource {
  /** What logs call this source: never a key, only where it comes from. */
  readonly description: string
  readonly resolve: JWTVerifyGetKey
  /** Fetches ahead of the first request; throws what the fetch threw. */
  warm?(): Promise<void>
  /** Told of each failed fetch, including those a cached set covered for (the authenticator logs them). */
  onFetchFailure?: (error: JwksFetchError) => void
}

/** The issuer's keys cannot be fetched and no cached set is usable: callers should retry later. */
export class IssuerUnavailableError extends Error {
  constructor(
    readonly source: string,
    readonly retryAfterSeconds: number,
    options: { cause?: unknown } = {},
  ) {
    super(`the keys of ${source} cannot be fetched and no usable copy is cached`, options)
    this.name = 'IssuerUnavailableError'
  }
}

/** A JWKS fetch that failed: unreachable, timed out, not 200, too large, or not a public key set. */
export class JwksFetchError extends Error {
  constructor(url: string, cause: unknown) {
    super(`fetching ${url} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
    this.name = 'JwksFetchError'
  }
}

export interface RemoteJwksTimings {
  /** Longest wait for one fetch. */
  readonly timeoutMs: number
  /** After a fetch (successful or not), how long before a missing `kid` or a failure may cause another. */
  readonly cooldownMs: number
  /** Age at which the cached set is fetched again before use. */
  readonly cacheMaxAgeMs: number
  /** While fetches fail, how much longer than cacheMaxAgeMs the last set fetched may still be used. */
  readonly staleIfErrorMs: number
}

/** Google's set is about 2 KB; a megabyte from a JWKS endpoint is a fault, not a key set. */
const MAX_JWKS_BYTES = 1_048_576

/**
 * jose's remote set, plus what it lacks for a service that must stay up: after a failed fetch, no new
 * attempt for a cooldown (jose would try again on every request past the cache age), and the last
 * set fetched stays usable for staleIfErrorMs beyond its age while the endpoint is down.
 */
export class RemoteJwks implements KeySource {
  readonly description: string
  private readonly remote: RemoteJWKSet
  /** jose writes each set it fetches here (`jwks`, and `uat`, the time of that fetch). */
  private readonly fetched: Partial<ExportedJWKSCache> = {}
  private lastKnown: { readonly jwks: JSONWebKeySet; readonly resolve: ReturnType<typeof createLocalJWKSet> } | undefined
  private noFetchUntil = 0
  onFetchFailure: ((error: JwksFetchError) => void) | undefined

  constructor(
    private readonly url: URL,
    private readonly timings: RemoteJwksTimings,
  ) {
    this.description = `JWKS ${url.href}`
    this.remote = createRemoteJWKSet(url, {
      timeoutDuration: Math.max(1, Math.round(timings.timeoutMs)),
      cooldownDuration: timings.cooldownMs,
      cacheMaxAge: timings.cacheMaxAgeMs,
      [jwksCache]: this.fetched as ExportedJWKSCache,
      [customFetch]: this.fetchKeySet,
    })
  }

  readonly resolve: JWTVerifyGetKey = async (header, token) => {
    if (Date.now() < this.noFetchUntil) return this.fromLastKnown(header, token)
    try {
      return await this.remote(header, token)
    } catch (error) {
      if (!(error instanceof JwksFetchError)) throw error
      this.noFetchUntil = Date.now() + this.timings.cooldownMs
      this.onFetchFailure?.(error)
      return this.fromLastKnown(header, token, error)
    }
  }

  async warm(): Promise<void> {
    await this.remote.reload()
  }

  private fromLastKnown(header: CompactJWSHeaderParameters, token: FlattenedJWSInput, cause?: unknown): Promise<CryptoKey> {
    const { jwks, uat } = this.fetched
    if (!jwks || uat === undefined || Date.now() - uat > this.timings.cacheMaxAgeMs + this.timings.staleIfErrorMs) {
      const retryAfter = Math.max(1, Math.ceil((this.noFetchUntil - Date.now()) / 1000))
      throw new IssuerUnavailableError(this.description, retryAfter, { cause })
    }
    if (this.lastKnown?.jwks !== jwks) this.lastKnown = { jwks, resolve: createLocalJWKSet(jwks) }
    return this.lastKnown.resolve(header, token)
  }

  /** jose's fetch, with the body capped and checked, and every failure one recognisable error. */
  private readonly fetchKeySet: FetchImplementation = async (url, options) => {
    try {
      const response = await fetch(url, options)
      if (response.status !== 200) {
        await response.body?.cancel()
        throw new Error(`HTTP ${response.status}`)
      }
      const text = await readCapped(response, MAX_JWKS_BYTES)
      const body: unknown = JSON.parse(text)
      assertPublicKeySet(body)
      return new Response(text, { status: 200, headers: { 'content-type': 'application/json' } })
    } catch (error) {
      throw new JwksFetchError(this.url.href, error)
    }
  }
}

/** A JWKS read once from a file; a missing `kid` is simply refused. */
export async function loadJwksFile(path: string): Promise<KeySource> {
  let body: unknown
  try {
    body = JSON.parse(await readFile(path, 'utf8'))
  } catch (error) {
    throw new Error(`${path} cannot be read as JSON: ${(error as Error).message}`)
  }
  assertPublicKeySet(body, path)
  return { description: `JWKS file ${path}`, resolve: createLocalJWKSet(body) }
}

/** One PEM public key (SPKI, PKCS#1 or a certificate), imported once per pinned algorithm. */
export async function loadPublicKeyPem(pem: string, algorithms: readonly AsymmetricAlgorithm[]): Promise<KeySource> {
  if (/PRIVATE KEY/.test(pem)) throw new Error('the PEM holds a private key; configure the public key only')
  const publicKey = createPublicKey(pem)
  const usable = algorithmsForKeyType(publicKey.asymmetricKeyType, publicKey.asymmetricKeyDetails?.namedCurve)
  const spki = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const keys = new Map<string, CryptoKey>()
  for (const algorithm of algorithms) {
    if (!usable.includes(algorithm)) throw new Error(`a ${publicKey.asymmetricKeyType} key cannot verify ${algorithm}`)
    keys.set(algorithm, await importSPKI(spki, algorithm))
  }
  return {
    description: 'PEM public key',
    resolve: async (header) => {
      const key = keys.get(header.alg)
      if (!key) throw new errors.JWKSNoMatchingKey()
      return key
    },
  }
}

async function readCapped(response: Response, limit: number): Promise<string> {
  if (Number(response.headers.get('content-length') ?? 0) > limit) {
    await response.body?.cancel()
    throw new Error(`the key set is larger than ${limit} bytes`)
  }
  const reader = response.body?.getReader()
  if (!reader) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      throw new Error(`the key set is larger than ${limit} bytes`)
    }
    chunks.push(value)
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
}

function assertPublicKeySet(body: unknown, where = 'the response'): asserts body is JSONWebKeySet {
  const keys = (body as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'object' && key !== null && !Array.isArray(key))) {
    throw new Error(`${where} is not a JSON Web Key Set`)
  }
  // A set that publishes a private or secret key is compromised or misconfigured: trust none of it.
  if (keys.some((key: Record<string, unknown>) => 'd' in key || 'k' in key || key.kty === 'oct')) {
    throw new Error(`${where} holds a private or secret key`)
  }
}
