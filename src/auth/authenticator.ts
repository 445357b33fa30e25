/**
 * Bearer-token authentication: the Authorization header in, a Principal out, or `unauthenticated`.
 * Verification follows RFC 8725: algorithms pinned per issuer to asymmetric ones, keys only from the
 * issuer's configured source, `exp`, `iat` and `sub` required, lifetime capped. The caller learns what
 * it needs to act on (RFC 6750's error_description): that the token expired or is not yet valid, that
 * its issuer is not one this server trusts, or else only that it is not valid. The precise reason goes
 * to metrics.authFailures{reason} and an info log line.
 */
import { errors as joseErrors, jwtVerify, type CryptoKey, type JWTPayload } from 'jose'
import { KeywrapError } from '../errors.js'
import type { Metrics } from '../metrics/metrics.js'
import { IssuerUnavailableError, type KeySource } from './key-sources.js'
import type { Principal } from './principal.js'
import { normalizeTokenType, tokenTypeSet, type TokenType } from '../config/token-types.js'
import { VerifiedTokenCache } from './token-cache.js'
import { decodeUnverified, UnverifiedJwtError, type UnverifiedJwt } from './unverified-jwt.js'
import type { Logger } from '../support/logger.js'

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<Principal>
  /**
   * The principal of a token this authenticator verified before and still remembers, at once; else
   * undefined, and authenticate() decides. Lets the hot path skip a promise per request.
   */
  cachedPrincipal?(authorization: string | undefined): Principal | undefined
}

/** An authenticator with a life: warm() before serving (never throws), close() at shutdown. */
export interface ManagedAuthenticator extends Authenticator {
  warm(): Promise<void>
  close(): void
  /** Where refusals (debug) and key-fetch failures (warn) are logged from now on, e.g. Fastify's app.log. */
  useLogger(logger: Logger): void
}

export interface TrustedIssuer {
  /** The `iss` tokens carry, and the issuer of the principals they name. */
  readonly issuer: string
  /** Other `iss` values meaning this issuer; principals are still named with `issuer`. */
  readonly otherSpellings?: readonly string[]
  readonly audience: string | readonly string[]
  readonly algorithms: readonly string[]
  /** One fixed public key, or a source choosing among the issuer's keys by `kid` and `alg`. */
  readonly key: CryptoKey | KeySource
  /** `email` names the principal by a verified email (the token must say `email_verified: true`). */
  readonly principalClaim?: 'sub' | 'email'
  /** The `typ` headers accepted, `null` for none (default: absent, `JWT`, `at+jwt`). */
  readonly acceptedTypes?: readonly TokenType[]
  /**
   * The 401 detail when a token names this issuer but its signature does not verify, for an issuer
   * where that has a likely, harmless cause worth telling (the development issuer of another KEYWRAP_HOME).
   */
  readonly untrustedSignatureDetail?: string
  /**
   * How long a verified token is taken from the cache before it is checked against the key source
   * again, so that a key the issuer withdrew stops working within this time (default: until `exp`).
   */
  readonly recheckAfterSeconds?: number
}

export interface AuthenticatorOptions {
  readonly maxTokenBytes: number
  readonly maxTokenLifetimeSeconds?: number
  readonly clockToleranceSeconds?: number
  /** 0 turns the verified-token cache off. */
  readonly tokenCacheEntries?: number
  /** The claims a principal keeps (those grants compare context values with), when their values are strings. */
  readonly keptClaims?: readonly string[]
  readonly metrics?: Metrics
  readonly logger?: Logger
  /** Milliseconds since the epoch (Date.now); tests freeze or shift it. */
  readonly now?: () => number
}

/** Why a token was refused: the label of metrics.authFailures, never shown to the caller. */
export type AuthFailureReason =
  | 'missing'
  | 'not_bearer'
  | 'too_large'
  | 'malformed'
  | 'duplicate_member'
  | 'embedded_key'
  | 'unknown_issuer'
  | 'algorithm'
  | 'token_type'
  | 'unknown_key'
  | 'signature'
  | 'unsupported'
  | 'missing_claim'
  | 'invalid_claim'
  | 'expired'
  | 'not_yet_valid'
  | 'issued_in_future'
  | 'lifetime'
  | 'issuer'
  | 'audience'
  | 'email_unverified'
  | 'issuer_unavailable'

/** A refused token, with the reason kept for metrics and logs. */
export class AuthFailure extends Error {
  readonly retryAfterSeconds: number | undefined

  /** Replaces the generic detail (an issuer's untrustedSignatureDetail). */
  readonly detail: string | undefined

  /** The issuer the refused token names, unverified, once it was decoded (for the audit entry). */
  claimedIssuer: string | undefined

  constructor(
    readonly reason: AuthFailureReason,
    options: { cause?: unknown; retryAfterSeconds?: number; detail?: string } = {},
  ) {
    super(`bearer token refused: ${reason}`, { cause: options.cause })
    this.name = 'AuthFailure'
    this.retryAfterSeconds = options.retryAfterSeconds
    this.detail = options.detail
  }

  /**
   * What the caller sees: the shape of the header, an expiry, an untrusted issuer; every other refusal
   * (a bad signature, a wrong audience, an unknown key) is only "not valid", so that a forger learns
   * nothing about which check failed.
   */
  toKeywrapError(): KeywrapError {
    if (this.detail !== undefined) return new KeywrapError('unauthenticated', this.detail, { cause: this })
    switch (this.reason) {
      case 'missing':
        return new KeywrapError('unauthenticated', 'The Authorization header is missing.', { cause: this })
      case 'not_bearer':
        return new KeywrapError('unauthenticated', 'The Authorization header is not "Bearer <JWT>".', { cause: this })
      case 'too_large':
        return new KeywrapError('unauthenticated', 'The bearer token is too long.', { cause: this })
      case 'expired':
        return new KeywrapError('unauthenticated', 'The bearer token has expired; get a new one.', { cause: this })
      case 'not_yet_valid':
      case 'issued_in_future':
        return new KeywrapError('unauthenticated', "The bearer token is not valid yet; check the issuer's and this server's clocks.", { cause: this })
      case 'unknown_issuer':
        return new KeywrapError('unauthenticated', "The token's issuer (iss) is not one this server trusts.", { cause: this })
      case 'issuer_unavailable':
        return new KeywrapError('issuer_unavailable', "The token issuer's signing keys cannot be fetched; try again.", {
          cause: this,
          retryAfterSeconds: this.retryAfterSeconds ?? 1,
        })
      default:
        return new KeywrapError('unauthenticated', 'The bearer token is not valid.', { cause: this })
    }
  }
}

// The scheme name is case-insensitive (RFC 7235).
const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i
/** Header parameters that would let the token choose its own key (RFC 8725 §3.10). */
const KEY_CARRYING_HEADERS = ['jku', 'x5u', 'jwk', 'x5c'] as const
const MAX_KID_LENGTH = 1024
const DEFAULT_MAX_LIFETIME_SECONDS = 24 * 3600
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30
const DEFAULT_TOKEN_CACHE_ENTRIES = 10_000

interface IssuerEntry {
  readonly issuer: string
  readonly spellings: readonly string[]
  readonly audience: string | string[]
  readonly algorithms: readonly string[]
  readonly key: CryptoKey | KeySource['resolve']
  readonly source: KeySource | undefined
  readonly principalClaim: 'sub' | 'email'
  readonly acceptedTypes: ReadonlySet<TokenType>
  readonly recheckAfterMs: number
  readonly untrustedSignatureDetail: string | undefined
}

export class JwtAuthenticator implements ManagedAuthenticator {
  private readonly issuers: ReadonlyMap<string, IssuerEntry>
  private readonly maxHeaderLength: number
  private readonly maxLifetimeSeconds: number
  private readonly clockToleranceSeconds: number
  private readonly cache: VerifiedTokenCache
  private readonly keptClaims: readonly string[]
  private readonly metrics: Metrics | undefined
  private logger: Logger | undefined
  private readonly now: () => number
  private readonly counts = { signatureChecks: 0, cacheHits: 0 }

  constructor(issuers: readonly TrustedIssuer[], options: AuthenticatorOptions) {
    const byIss = new Map<string, IssuerEntry>()
    for (const trusted of issuers) {
      const spellings = [trusted.issuer, ...(trusted.otherSpellings ?? [])]
      const source = isKeySource(trusted.key) ? trusted.key : undefined
      const entry: IssuerEntry = {
        issuer: trusted.issuer,
        spellings,
        audience: typeof trusted.audience === 'string' ? trusted.audience : [...trusted.audience],
        algorithms: [...trusted.algorithms],
        key: source ? source.resolve : (trusted.key as CryptoKey),
        source,
        principalClaim: trusted.principalClaim ?? 'sub',
        acceptedTypes: tokenTypeSet(trusted.acceptedTypes),
        recheckAfterMs: (trusted.recheckAfterSeconds ?? Infinity) * 1000,
        untrustedSignatureDetail: trusted.untrustedSignatureDetail,
      }
      for (const spelling of spellings) {
        if (byIss.has(spelling)) throw new Error(`issuer "${spelling}" is configured twice`)
        byIss.set(spelling, entry)
      }
      if (source) {
        source.onFetchFailure = (error) => this.logger?.warn({ issuer: trusted.issuer, cause: describe(error) }, 'issuer keys cannot be fetched')
      }
    }
    this.issuers = byIss
    this.maxHeaderLength = 'Bearer '.length + options.maxTokenBytes
    this.maxLifetimeSeconds = options.maxTokenLifetimeSeconds ?? DEFAULT_MAX_LIFETIME_SECONDS
    this.clockToleranceSeconds = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS
    this.cache = new VerifiedTokenCache(options.tokenCacheEntries ?? DEFAULT_TOKEN_CACHE_ENTRIES)
    this.keptClaims = options.keptClaims ?? []
    this.metrics = options.metrics
    this.logger = options.logger
    this.now = options.now ?? Date.now
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    try {
      return await this.verify(authorization)
    } catch (error) {
      if (!(error instanceof AuthFailure)) throw error
      this.metrics?.authFailures.inc({ reason: error.reason })
      const details = { reason: error.reason, cause: describe(error.cause) }
      if (error.reason === 'issuer_unavailable') this.logger?.warn(details, 'bearer token not verified: issuer keys unavailable')
      else this.logger?.info(details, 'bearer token refused')
      throw error.toKeywrapError()
    }
  }

  /** Fetches every remote key set once; a failure is logged, and the first request will try again. */
  async warm(): Promise<void> {
    const sources = new Set([...this.issuers.values()].map((entry) => entry.source))
    await Promise.all(
      [...sources].map(async (source) => {
        if (!source?.warm) return
        try {
          await source.warm()
        } catch (error) {
          this.logger?.warn({ source: source.description, cause: describe(error) }, 'issuer keys not fetched at start-up')
        }
      }),
    )
  }

  close(): void {
    this.cache.clear()
  }

  useLogger(logger: Logger): void {
    this.logger = logger
  }

  /** Signature checks done and answers taken from the verified-token cache, since start. */
  stats(): { signatureChecks: number; cacheHits: number; cachedTokens: number } {
    return { ...this.counts, cachedTokens: this.cache.size }
  }

  cachedPrincipal(authorization: string | undefined): Principal | undefined {
    const token = this.bearerToken(authorization)
    return typeof token === 'string' ? this.remembered(VerifiedTokenCache.digest(token), this.now()) : undefined
  }

  /** The token of a well-formed `Bearer` header, or why there is none. */
  private bearerToken(authorization: string | undefined): string | AuthFailure {
    if (!authorization) return new AuthFailure('missing')
    // Before any decoding: a huge header costs a length comparison, nothing more.
    if (authorization.length > this.maxHeaderLength) return new AuthFailure('too_large')
    const token = BEARER.exec(authorization)?.[1]
    if (!token) return new AuthFailure(/^Bearer /i.test(authorization) ? 'malformed' : 'not_bearer')
    return token
  }

  private remembered(digest: string, now: number): Principal | undefined {
    const cached = this.cache.get(digest, now)
    if (cached) this.counts.cacheHits++
    return cached
  }

  private async verify(authorization: string | undefined): Promise<Principal> {
    const token = this.bearerToken(authorization)
    if (token instanceof AuthFailure) throw token

    const now = this.now()
    const digest = VerifiedTokenCache.digest(token)
    const cached = this.remembered(digest, now)
    if (cached) return cached

    const decoded = decodeOrRefuse(token)
    try {
      return await this.verifyDecoded(token, digest, decoded, now)
    } catch (error) {
      if (error instanceof AuthFailure && typeof decoded.claims.iss === 'string') error.claimedIssuer = decoded.claims.iss
      throw error
    }
  }

  private async verifyDecoded(token: string, digest: string, { header, claims }: UnverifiedJwt, now: number): Promise<Principal> {
    if (KEY_CARRYING_HEADERS.some((name) => Object.hasOwn(header, name))) throw new AuthFailure('embedded_key')
    const entry = typeof claims.iss === 'string' ? this.issuers.get(claims.iss) : undefined
    if (!entry) throw new AuthFailure('unknown_issuer')
    if (!entry.acceptedTypes.has(normalizeTokenType(header.typ) as TokenType)) throw new AuthFailure('token_type')
    // jose checks this too; checking first means no key source is ever asked about a refused algorithm.
    if (typeof header.alg !== 'string' || !entry.algorithms.includes(header.alg)) throw new AuthFailure('algorithm')
    if (header.kid !== undefined && (typeof header.kid !== 'string' || header.kid.length > MAX_KID_LENGTH)) {
      throw new AuthFailure('malformed')
    }

    this.counts.signatureChecks++
    const verified = jwtVerify(token, entry.key, {
      issuer: [...entry.spellings],
      audience: entry.audience,
      algorithms: [...entry.algorithms],
      requiredClaims: ['exp', 'iat', 'sub'],
      clockTolerance: this.clockToleranceSeconds,
      maxTokenAge: this.maxLifetimeSeconds,
      currentDate: new Date(now),
    })
    const payload = await verified.then(
      (result) => result.payload,
      (error: unknown) => {
        const failure = classify(error)
        if (failure instanceof AuthFailure && failure.reason === 'signature' && entry.untrustedSignatureDetail !== undefined) {
          throw new AuthFailure('signature', { cause: error, detail: entry.untrustedSignatureDetail })
        }
        throw failure
      },
    )
    const { exp, iat, sub } = payload as { exp: number; iat: number; sub: unknown }
    // maxTokenAge bounds how old the token is; this bounds how long it was issued for.
    if (exp - iat > this.maxLifetimeSeconds || exp <= iat) throw new AuthFailure('lifetime')
    if (typeof sub !== 'string' || sub.length === 0) throw new AuthFailure('invalid_claim')
    const kept = keptClaimsOf(payload, this.keptClaims)
    const principal: Principal = Object.freeze({ id: principalId(entry, payload), issuer: entry.issuer, ...(kept && { claims: kept }) })
    this.cache.set(digest, principal, Math.min(exp * 1000, now + entry.recheckAfterMs), now)
    return principal
  }
}

function principalId(entry: IssuerEntry, payload: JWTPayload): string {
  if (entry.principalClaim === 'sub') return payload.sub!
  // A strict true: some issuers have sent the string "true", which this refuses rather than guesses at.
  if (payload.email_verified !== true) throw new AuthFailure('email_unverified')
  if (typeof payload.email !== 'string' || payload.email.length === 0) throw new AuthFailure('invalid_claim')
  return payload.email
}

/** The kept claims the token carries as strings; other types are left out, so a condition on them is not met. */
function keptClaimsOf(payload: JWTPayload, names: readonly string[]): Readonly<Record<string, string>> | undefined {
  const kept = names.flatMap((name) => {
    const value = Object.hasOwn(payload, name) ? payload[name] : undefined
    return typeof value === 'string' ? [[name, value] as [string, string]] : []
  })
  // fromEntries defines each claim as an own property, "__proto__" included.
  return kept.length === 0 ? undefined : Object.freeze(Object.fromEntries(kept))
}

function decodeOrRefuse(token: string): ReturnType<typeof decodeUnverified> {
  try {
    return decodeUnverified(token)
  } catch (error) {
    if (error instanceof UnverifiedJwtError) throw new AuthFailure(error.problem, { cause: error })
    throw error
  }
}

/** jose's errors (and the key sources') as refusal reasons; anything else is a fault, not a bad token. */
function classify(error: unknown): unknown {
  if (error instanceof AuthFailure) return error
  if (error instanceof IssuerUnavailableError) {
    return new AuthFailure('issuer_unavailable', { cause: error, retryAfterSeconds: error.retryAfterSeconds })
  }
  if (!(error instanceof joseErrors.JOSEError)) return error
  return new AuthFailure(reasonOf(error), { cause: error })
}

function reasonOf(error: joseErrors.JOSEError): AuthFailureReason {
  if (error instanceof joseErrors.JWTExpired) return 'expired'
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return 'missing_claim'
    if (error.claim === 'nbf') return 'not_yet_valid'
    if (error.claim === 'iat') return 'issued_in_future'
    if (error.claim === 'iss') return 'issuer'
    if (error.claim === 'aud') return 'audience'
    return 'invalid_claim'
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature'
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm'
  if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) return 'unknown_key'
  if (error instanceof joseErrors.JOSENotSupported) return 'unsupported'
  return 'malformed'
}

function isKeySource(key: CryptoKey | KeySource): key is KeySource {
  return typeof (key as KeySource).resolve === 'function'
}

/** An error for a log line: its message (never a token), and its cause's. */
function describe(error: unknown): string | undefined {
  if (error === undefined) return undefined
  if (!(error instanceof Error)) return String(error)
  return error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message
}
