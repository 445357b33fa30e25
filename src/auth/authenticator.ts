/**
 * Bearer-token authentication: the Authorization header in, a Principal out, or `unauthenticated`.
 * The reason a token was refused goes to the request log at debug level, never to the caller.
 */
import { errors as joseErrors, jwtVerify, type CryptoKey } from 'jose'
import { KeywrapError } from '../errors.js'
import type { Principal } from './principal.js'

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<Principal>
}

export interface TrustedIssuer {
  readonly issuer: string
  readonly audience: string
  readonly algorithms: readonly string[]
  readonly key: CryptoKey
}

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/
const MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600
const CLOCK_TOLERANCE_SECONDS = 30

export class JwtAuthenticator implements Authenticator {
  private readonly issuers: ReadonlyMap<string, TrustedIssuer>
  private readonly maxTokenBytes: number

  constructor(issuers: readonly TrustedIssuer[], options: { maxTokenBytes: number }) {
    this.issuers = new Map(issuers.map((issuer) => [issuer.issuer, issuer]))
    this.maxTokenBytes = options.maxTokenBytes
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (!authorization) throw new KeywrapError('unauthenticated', 'The Authorization header is missing.')
    if (authorization.length > this.maxTokenBytes + 7) throw new KeywrapError('unauthenticated', 'The bearer token is too long.')
    const token = BEARER.exec(authorization)?.[1]
    if (!token) throw new KeywrapError('unauthenticated', 'The Authorization header is not "Bearer <JWT>".')
    const issuer = this.issuers.get(unverifiedIssuer(token) ?? '')
    if (!issuer) throw invalidToken()
    try {
      const { payload } = await jwtVerify(token, issuer.key, {
        issuer: issuer.issuer,
        audience: issuer.audience,
        algorithms: [...issuer.algorithms],
        requiredClaims: ['exp', 'iat', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        maxTokenAge: MAX_TOKEN_LIFETIME_SECONDS,
      })
      const lifetime = (payload.exp ?? 0) - (payload.iat ?? 0)
      if (lifetime > MAX_TOKEN_LIFETIME_SECONDS || !payload.sub) throw invalidToken()
      return { id: payload.sub, issuer: issuer.issuer }
    } catch (error) {
      if (error instanceof KeywrapError) throw error
      if (error instanceof joseErrors.JOSEError) throw invalidToken(error)
      throw error
    }
  }
}

function invalidToken(cause?: unknown): KeywrapError {
  return new KeywrapError('unauthenticated', 'The bearer token is not valid.', { cause })
}

/** Reads `iss` only to choose which issuer's key verifies the token; nothing else is trusted before that. */
function unverifiedIssuer(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { iss?: unknown }
    return typeof payload.iss === 'string' ? payload.iss : undefined
  } catch {
    return undefined
  }
}
