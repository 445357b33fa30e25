/**
 * The `auth` section of the config file: which issuers' tokens are accepted, and how tokens are
 * checked. readAuthSettings validates all of it and reports every problem, each naming its setting.
 */
import { isAbsolute, resolve } from 'node:path'
import { createPublicKey } from 'node:crypto'
import { algorithmsForKeyType, ASYMMETRIC_ALGORITHMS, isAsymmetricAlgorithm, type AsymmetricAlgorithm } from './algorithms.js'
import type { TokenType } from './token-types.js'
import { DEFAULT_AUDIENCE, DEV_ISSUER, type Mode } from './config.js'
import { isLoopback } from '../support/loopback.js'

export type PrincipalClaim = 'sub' | 'email'

export type KeySourceSettings =
  | { readonly kind: 'jwksUri'; readonly uri: string }
  | { readonly kind: 'jwksFile'; readonly path: string }
  | { readonly kind: 'publicKeyPem'; readonly pem: string }

export interface IssuerSettings {
  /** The `iss` tokens carry, and the issuer principals belong to (what a grant's `issuer` names). */
  readonly issuer: string
  /** Other `iss` values meaning the same issuer (Google writes both `https://accounts.google.com` and `accounts.google.com`). */
  readonly otherSpellings: readonly string[]
  /** A token must name at least one of these in `aud`. */
  readonly audience: readonly string[]
  readonly keys: KeySourceSettings
  readonly algorithms: readonly AsymmetricAlgorithm[]
  /** `email` is used only when the token also says `email_verified: true`. */
  readonly principalClaim: PrincipalClaim
  /** The `typ` headers accepted, `null` for a token without one; absent: the authenticator's default. */
  readonly acceptedTypes?: readonly TokenType[]
}

export interface JwksSettings {
  readonly timeoutSeconds: number
  /** After a fetch, how long before an unknown `kid` (or a failure) may cause another. */
  readonly cooldownSeconds: number
  /** Age at which a fetched set is fetched again before use. */
  readonly cacheMaxAgeSeconds: number
  /** While the endpoint fails, how long past its age the last set fetched may still be used. */
  readonly staleIfErrorSeconds: number
}

export interface AuthSettings {
  /** Accept tokens of the development issuer (KEYWRAP_HOME/dev-issuer.json). */
  readonly devIssuer: boolean
  /** The `aud` development tokens carry. */
  readonly audience: string
  /** Longest bearer token accepted, checked before any decoding. */
  readonly maxTokenBytes: number
  /** Longest `exp - iat` accepted. */
  readonly maxTokenLifetimeSeconds: number
  readonly clockToleranceSeconds: number
  /** Verified tokens remembered until their `exp`; 0 turns the cache off. */
  readonly tokenCacheEntries: number
  readonly jwks: JwksSettings
  readonly issuers: readonly IssuerSettings[]
}

export const GOOGLE_ISSUER = 'https://accounts.google.com'
export const GOOGLE_ISSUER_SPELLINGS = ['https://accounts.google.com', 'accounts.google.com'] as const
export const GOOGLE_JWKS_URI = 'https://www.googleapis.com/oauth2/v3/certs'

export function defaultAuthSettings(mode: Mode): AuthSettings {
  return {
    devIssuer: mode === 'development',
    audience: DEFAULT_AUDIENCE,
    maxTokenBytes: 8192,
    maxTokenLifetimeSeconds: 86_400,
    clockToleranceSeconds: 30,
    tokenCacheEntries: 10_000,
    jwks: { timeoutSeconds: 5, cooldownSeconds: 30, cacheMaxAgeSeconds: 600, staleIfErrorSeconds: 3600 },
    issuers: [],
  }
}

const AUTH_FIELDS = ['devIssuer', 'audience', 'maxTokenBytes', 'maxTokenLifetimeSeconds', 'clockToleranceSeconds', 'tokenCacheEntries', 'jwks', 'issuers']
const JWKS_FIELDS = ['timeoutSeconds', 'cooldownSeconds', 'cacheMaxAgeSeconds', 'staleIfErrorSeconds']
const ISSUER_FIELDS = ['issuer', 'audience', 'jwksUri', 'jwksFile', 'publicKeyPem', 'algorithms', 'principalClaim', 'typ']
const GOOGLE_FIELDS = ['preset', 'audience', 'jwksUri']
const KEY_SOURCES = ['jwksUri', 'jwksFile', 'publicKeyPem'] as const
const PRESETS = ['google']
const PRINCIPAL_CLAIMS: readonly PrincipalClaim[] = ['sub', 'email']
const RSA_MIN_BITS = 2048

type Json = Record<string, unknown>

/** Reads `auth` from the config file; each problem adds one violation naming its setting. */
export function readAuthSettings(section: unknown, mode: Mode, violations: string[]): AuthSettings {
  const defaults = defaultAuthSettings(mode)
  if (section === undefined) return defaults
  if (!isObject(section)) {
    violations.push('auth must be an object')
    return defaults
  }
  for (const field of Object.keys(section)) {
    if (!AUTH_FIELDS.includes(field)) violations.push(`auth.${field} is not a setting (known: ${AUTH_FIELDS.join(', ')})`)
  }
  const number = (field: string, fallback: number, min: number, max: number) => wholeNumber(section[field], `auth.${field}`, fallback, min, max, violations)

  let devIssuer = defaults.devIssuer
  if (section.devIssuer !== undefined) {
    if (typeof section.devIssuer === 'boolean') devIssuer = section.devIssuer
    else violations.push('auth.devIssuer must be true or false')
  }
  let audience = defaults.audience
  if (section.audience !== undefined) {
    if (typeof section.audience === 'string' && section.audience.length > 0) audience = section.audience
    else violations.push('auth.audience must be a non-empty string')
  }
  return {
    devIssuer,
    audience,
    // Node refuses request headers over 16 KiB (431) unless its maxHeaderSize is raised.
    // Node refuses request headers over 16 KiB (431) before any of this runs.
    maxTokenBytes: number('maxTokenBytes', defaults.maxTokenBytes, 512, 16_384),
    maxTokenLifetimeSeconds: number('maxTokenLifetimeSeconds', defaults.maxTokenLifetimeSeconds, 60, 86_400),
    clockToleranceSeconds: number('clockToleranceSeconds', defaults.clockToleranceSeconds, 0, 300),
    tokenCacheEntries: number('tokenCacheEntries', defaults.tokenCacheEntries, 0, 1_000_000),
    jwks: readJwks(section.jwks, defaults.jwks, violations),
    issuers: readIssuers(section.issuers, devIssuer, violations),
  }
}

function readJwks(section: unknown, defaults: JwksSettings, violations: string[]): JwksSettings {
  if (section === undefined) return defaults
  if (!isObject(section)) {
    violations.push('auth.jwks must be an object')
    return defaults
  }
  for (const field of Object.keys(section)) {
    if (!JWKS_FIELDS.includes(field)) violations.push(`auth.jwks.${field} is not a setting (known: ${JWKS_FIELDS.join(', ')})`)
  }
  const number = (field: keyof JwksSettings, min: number, max: number) =>
    wholeNumber(section[field], `auth.jwks.${field}`, defaults[field], min, max, violations)
  return {
    timeoutSeconds: number('timeoutSeconds', 1, 60),
    cooldownSeconds: number('cooldownSeconds', 1, 3600),
    cacheMaxAgeSeconds: number('cacheMaxAgeSeconds', 60, 86_400),
    staleIfErrorSeconds: number('staleIfErrorSeconds', 0, 86_400),
  }
}

function readIssuers(section: unknown, devIssuer: boolean, violations: string[]): IssuerSettings[] {
  if (section === undefined) return []
  if (!Array.isArray(section)) {
    violations.push('auth.issuers must be a list of issuers')
    return []
  }
  const issuers: IssuerSettings[] = []
  // Every `iss` spelling belongs to one issuer, or the unverified `iss` could not choose the keys.
  const claimedBy = new Map<string, string>(devIssuer ? [[DEV_ISSUER, 'auth.devIssuer']] : [])
  section.forEach((raw: unknown, index: number) => {
    const where = `auth.issuers[${index}]`
    if (!isObject(raw)) {
      violations.push(`${where} must be an object with issuer, audience and one of ${KEY_SOURCES.join(', ')} (or preset: google)`)
      return
    }
    const issuer = raw.preset !== undefined ? readPreset(raw, where, violations) : readIssuer(raw, where, violations)
    if (!issuer) return
    for (const spelling of [issuer.issuer, ...issuer.otherSpellings]) {
      const owner = claimedBy.get(spelling)
      if (owner) violations.push(`${where}: issuer "${spelling}" is already configured by ${owner}`)
      else claimedBy.set(spelling, where)
    }
    issuers.push(issuer)
  })
  return issuers
}

function readPreset(raw: Json, where: string, violations: string[]): IssuerSettings | undefined {
  if (!PRESETS.includes(raw.preset as string)) {
    violations.push(`${where}.preset: "${String(raw.preset)}" is not a preset (known: ${PRESETS.join(', ')})`)
    return undefined
  }
  for (const field of Object.keys(raw)) {
    if (!GOOGLE_FIELDS.includes(field)) violations.push(`${where}.${field} is not a field of the google preset (known: ${GOOGLE_FIELDS.join(', ')})`)
  }
  const audience = readAudience(raw.audience, `${where}.audience`, violations)
  const uri = raw.jwksUri === undefined ? GOOGLE_JWKS_URI : readJwksUri(raw.jwksUri, `${where}.jwksUri`, violations)
  if (!audience || !uri) return undefined
  return {
    issuer: GOOGLE_ISSUER,
    otherSpellings: GOOGLE_ISSUER_SPELLINGS.filter((spelling) => spelling !== GOOGLE_ISSUER),
    audience,
    keys: { kind: 'jwksUri', uri },
    algorithms: ['RS256'],
    principalClaim: 'email',
  }
}

function readIssuer(raw: Json, where: string, violations: string[]): IssuerSettings | undefined {
  for (const field of Object.keys(raw)) {
    if (!ISSUER_FIELDS.includes(field)) violations.push(`${where}.${field} is not an issuer field (known: ${ISSUER_FIELDS.join(', ')}, or preset)`)
  }
  let issuer: string | undefined
  if (typeof raw.issuer !== 'string' || raw.issuer.length === 0) violations.push(`${where}.issuer must be a non-empty string (the tokens' iss)`)
  else if (raw.issuer === DEV_ISSUER) violations.push(`${where}.issuer: ${DEV_ISSUER} is the development issuer; turn it on with auth.devIssuer instead`)
  else issuer = raw.issuer
  const audience = readAudience(raw.audience, `${where}.audience`, violations)

  const given = KEY_SOURCES.filter((field) => raw[field] !== undefined)
  if (given.length !== 1) {
    violations.push(`${where} needs exactly one key source: ${KEY_SOURCES.join(', ')}${given.length > 1 ? ` (has ${given.join(' and ')})` : ''}`)
  }
  let keys: KeySourceSettings | undefined
  let keyAlgorithms: readonly AsymmetricAlgorithm[] | undefined
  if (given.length === 1 && given[0] === 'jwksUri') {
    const uri = readJwksUri(raw.jwksUri, `${where}.jwksUri`, violations)
    if (uri) keys = { kind: 'jwksUri', uri }
  } else if (given.length === 1 && given[0] === 'jwksFile') {
    if (typeof raw.jwksFile === 'string' && raw.jwksFile.length > 0) {
      keys = { kind: 'jwksFile', path: isAbsolute(raw.jwksFile) ? raw.jwksFile : resolve(raw.jwksFile) }
    } else violations.push(`${where}.jwksFile must be the path of a JWKS file`)
  } else if (given.length === 1 && given[0] === 'publicKeyPem') {
    keyAlgorithms = readPem(raw.publicKeyPem, `${where}.publicKeyPem`, violations)
    if (keyAlgorithms) keys = { kind: 'publicKeyPem', pem: raw.publicKeyPem as string }
  }

  const algorithms = readAlgorithms(raw.algorithms, `${where}.algorithms`, keyAlgorithms, violations)
  let principalClaim: PrincipalClaim = 'sub'
  if (raw.principalClaim !== undefined) {
    if (PRINCIPAL_CLAIMS.includes(raw.principalClaim as PrincipalClaim)) principalClaim = raw.principalClaim as PrincipalClaim
    else violations.push(`${where}.principalClaim must be sub or email (email only from tokens with email_verified: true)`)
  }
  const acceptedTypes = raw.typ === undefined ? undefined : readTokenTypes(raw.typ, `${where}.typ`, violations)
  if (!issuer || !audience || !keys || !algorithms) return undefined
  return { issuer, otherSpellings: [], audience, keys, algorithms, principalClaim, ...(acceptedTypes && { acceptedTypes }) }
}

/** `typ`: a non-empty list of media types (`JWT`, `at+jwt`, …), `null` allowing tokens without one. */
function readTokenTypes(raw: unknown, where: string, violations: string[]): TokenType[] | undefined {
  const valid = Array.isArray(raw) && raw.length > 0 && raw.every((type) => type === null || (typeof type === 'string' && /^[\x21-\x7e]{1,64}$/.test(type)))
  if (valid) return raw as TokenType[]
  violations.push(`${where} must be a non-empty list of typ values (e.g. ["JWT", "at+jwt"]), null allowing tokens without typ`)
  return undefined
}

function readAudience(value: unknown, where: string, violations: string[]): string[] | undefined {
  if (typeof value === 'string' && value.length > 0) return [value]
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string' && item.length > 0)) return value
  violations.push(`${where} must be a non-empty string or list of strings (the aud tokens must carry)`)
  return undefined
}

function readJwksUri(value: unknown, where: string, violations: string[]): string | undefined {
  const message = `${where} must be an https:// URL (http:// only for loopback)`
  let url: URL
  try {
    url = new URL(value as string)
  } catch {
    violations.push(message)
    return undefined
  }
  if (typeof value !== 'string' || !(url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname)))) {
    violations.push(message)
    return undefined
  }
  if (url.username || url.password) {
    violations.push(`${where} must not carry a user name or password`)
    return undefined
  }
  return url.href
}

/** The algorithms a PEM public key can verify, or undefined (with a violation) when it is unusable. */
function readPem(value: unknown, where: string, violations: string[]): readonly AsymmetricAlgorithm[] | undefined {
  if (typeof value !== 'string' || !/-----BEGIN [A-Z0-9 ]+-----/.test(value)) {
    violations.push(`${where} must be a PEM public key (-----BEGIN PUBLIC KEY-----)`)
    return undefined
  }
  if (/PRIVATE KEY/.test(value)) {
    violations.push(`${where} is a private key; configure the public key only (and treat this one as exposed)`)
    return undefined
  }
  let key: ReturnType<typeof createPublicKey>
  try {
    key = createPublicKey(value)
  } catch {
    violations.push(`${where} is not a readable PEM public key`)
    return undefined
  }
  const details = key.asymmetricKeyDetails
  if ((key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') && (details?.modulusLength ?? 0) < RSA_MIN_BITS) {
    violations.push(`${where} is a ${details?.modulusLength}-bit RSA key; at least ${RSA_MIN_BITS} bits are required`)
    return undefined
  }
  const algorithms = algorithmsForKeyType(key.asymmetricKeyType, details?.namedCurve)
  if (algorithms.length === 0) {
    violations.push(
      `${where} is an unsupported key (${key.asymmetricKeyType}${details?.namedCurve ? ` ${details.namedCurve}` : ''}); use RSA, EC P-256/P-384 or Ed25519`,
    )
    return undefined
  }
  return algorithms
}

/**
 * The algorithms pinned for an issuer. Without a list: what a PEM key's type implies (RSA: RS256), or
 * RS256 for a JWKS, which is what OpenID Connect providers sign ID tokens with.
 */
function readAlgorithms(
  value: unknown,
  where: string,
  keyAlgorithms: readonly AsymmetricAlgorithm[] | undefined,
  violations: string[],
): AsymmetricAlgorithm[] | undefined {
  if (value === undefined) return keyAlgorithms ? [keyAlgorithms[0]!] : ['RS256']
  if (!Array.isArray(value) || value.length === 0) {
    violations.push(`${where} must be a non-empty list of ${ASYMMETRIC_ALGORITHMS.join(', ')}`)
    return undefined
  }
  const problems: string[] = []
  for (const algorithm of value) {
    if (isAsymmetricAlgorithm(algorithm)) {
      if (keyAlgorithms && !keyAlgorithms.includes(algorithm))
        problems.push(`"${algorithm}" does not fit the publicKeyPem key (it fits ${keyAlgorithms.join(', ')})`)
    } else if (typeof algorithm === 'string' && algorithm.toLowerCase() === 'none') problems.push('"none" is no signature at all')
    else if (typeof algorithm === 'string' && /^HS\d+$/i.test(algorithm))
      problems.push(`"${algorithm}" is symmetric: the issuer's public key would be the secret`)
    else problems.push(`"${String(algorithm)}" is not accepted`)
  }
  if (problems.length > 0) {
    violations.push(`${where}: ${problems.join('; ')} (accepted: ${ASYMMETRIC_ALGORITHMS.join(', ')})`)
    return undefined
  }
  return [...new Set(value as AsymmetricAlgorithm[])]
}

function wholeNumber(value: unknown, where: string, fallback: number, min: number, max: number, violations: string[]): number {
  if (value === undefined) return fallback
  if (Number.isInteger(value) && (value as number) >= min && (value as number) <= max) return value as number
  violations.push(`${where} must be a whole number from ${min} to ${max}`)
  return fallback
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
