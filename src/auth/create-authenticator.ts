/**
 * Builds the authenticator from the `auth` settings: the development issuer (outside production,
 * unless turned off), then every configured issuer with its key source. JWKS files and PEM keys are
 * read here, once; remote key sets are fetched by warm() and then as jose's cache ages.
 */
import { DEV_ISSUER, type Mode } from '../config/config.js'
import type { AuthSettings, IssuerSettings } from '../config/auth-settings.js'
import type { Metrics } from '../metrics/metrics.js'
import { JwtAuthenticator, type TrustedIssuer } from './authenticator.js'
import { loadDevIssuer } from './dev-issuer.js'
import { loadJwksFile, loadPublicKeyPem, RemoteJwks, type KeySource } from './key-sources.js'
import type { Logger } from '../support/logger.js'

export interface AuthenticatorDependencies {
  /** KEYWRAP_HOME, where the development issuer's key lives. */
  readonly home: string
  readonly mode: Mode
  readonly metrics?: Metrics
  readonly logger?: Logger
  /** Milliseconds since the epoch (Date.now); tests freeze or shift it. */
  readonly now?: () => number
  /** The token claims the grants name (claimsNamed()): the only ones a principal keeps. */
  readonly keptClaims?: readonly string[]
}

export async function createAuthenticator(settings: AuthSettings, deps: AuthenticatorDependencies): Promise<JwtAuthenticator> {
  const issuers: TrustedIssuer[] = []
  if (settings.devIssuer && deps.mode !== 'production') {
    const dev = await loadDevIssuer(deps.home)
    issuers.push({
      issuer: DEV_ISSUER,
      audience: settings.audience,
      algorithms: ['EdDSA'],
      key: dev.publicKey,
      untrustedSignatureDetail:
        "The token names the development issuer but was not signed by this server's: mint it with the server's KEYWRAP_HOME (keywrap token says when it creates a new issuer, and where).",
    })
  }
  const problems: string[] = []
  for (const [index, issuer] of settings.issuers.entries()) {
    try {
      issuers.push(await trustedIssuer(issuer, settings))
    } catch (error) {
      problems.push(`auth.issuers[${index}] (${issuer.issuer}): ${(error as Error).message}`)
    }
  }
  if (problems.length > 0) throw new Error(`keywrap cannot load the token issuers' keys:\n  - ${problems.join('\n  - ')}`)
  return new JwtAuthenticator(issuers, {
    maxTokenBytes: settings.maxTokenBytes,
    maxTokenLifetimeSeconds: settings.maxTokenLifetimeSeconds,
    clockToleranceSeconds: settings.clockToleranceSeconds,
    tokenCacheEntries: settings.tokenCacheEntries,
    ...(deps.keptClaims && { keptClaims: deps.keptClaims }),
    ...(deps.metrics && { metrics: deps.metrics }),
    ...(deps.logger && { logger: deps.logger }),
    ...(deps.now && { now: deps.now }),
  })
}

async function trustedIssuer(issuer: IssuerSettings, settings: AuthSettings): Promise<TrustedIssuer> {
  let key: KeySource
  let recheckAfterSeconds: number | undefined
  switch (issuer.keys.kind) {
    case 'jwksUri': {
      const { jwks } = settings
      key = new RemoteJwks(new URL(issuer.keys.uri), {
        timeoutMs: jwks.timeoutSeconds * 1000,
        cooldownMs: jwks.cooldownSeconds * 1000,
        cacheMaxAgeMs: jwks.cacheMaxAgeSeconds * 1000,
        staleIfErrorMs: jwks.staleIfErrorSeconds * 1000,
      })
      // A cached token is checked against the key set again once the set itself would be refetched.
      recheckAfterSeconds = jwks.cacheMaxAgeSeconds
      break
    }
    case 'jwksFile':
      key = await loadJwksFile(issuer.keys.path)
      break
    case 'publicKeyPem':
      key = await loadPublicKeyPem(issuer.keys.pem, issuer.algorithms)
      break
  }
  return {
    issuer: issuer.issuer,
    otherSpellings: issuer.otherSpellings,
    audience: issuer.audience,
    algorithms: issuer.algorithms,
    key,
    principalClaim: issuer.principalClaim,
    ...(issuer.acceptedTypes && { acceptedTypes: issuer.acceptedTypes }),
    ...(recheckAfterSeconds !== undefined && { recheckAfterSeconds }),
  }
}
