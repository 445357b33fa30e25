/** Shared by the authenticator tests: settings, token minting, raw token assembly and refusal checks. */
import assert from 'node:assert/strict'
import { subtle } from 'node:crypto'
import { SignJWT } from 'jose'
import type { JwtAuthenticator } from '../../src/auth/authenticator.js'
import { defaultAuthSettings, type AuthSettings, type IssuerSettings } from '../../src/config/auth-settings.js'
import { KeywrapError, type ErrorCode } from '../../src/errors.js'
import { Metrics } from '../../src/metrics/metrics.js'
import type { SigningKey } from '../support/jwks-server.js'

export const ISSUER = 'https://issuer.example'
export const AUDIENCE = 'keywrap-api'

export const seconds = (milliseconds = Date.now()) => Math.floor(milliseconds / 1000)

/** Production-like settings: no development issuer, fast JWKS timings unless given. */
export function settingsWith(issuers: IssuerSettings[], overrides: Partial<AuthSettings> = {}): AuthSettings {
  const defaults = defaultAuthSettings('production')
  return {
    ...defaults,
    jwks: { timeoutSeconds: 1, cooldownSeconds: 30, cacheMaxAgeSeconds: 600, staleIfErrorSeconds: 3600 },
    issuers,
    ...overrides,
  }
}

export function jwksIssuer(uri: string, overrides: Partial<IssuerSettings> = {}): IssuerSettings {
  return {
    issuer: ISSUER,
    otherSpellings: [],
    audience: [AUDIENCE],
    keys: { kind: 'jwksUri', uri },
    algorithms: ['RS256', 'ES256', 'EdDSA'],
    principalClaim: 'sub',
    ...overrides,
  }
}

/** A token signed by `key`; claims and header fields set to undefined are left out. */
export async function sign(
  key: Pick<SigningKey, 'privateKey' | 'alg'> & { readonly kid?: string | undefined },
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
  now = Date.now(),
): Promise<string> {
  const base = { iss: ISSUER, aud: AUDIENCE, sub: 'alice', iat: seconds(now), exp: seconds(now) + 600 }
  return new SignJWT(defined({ ...base, ...claims }))
    .setProtectedHeader(defined({ alg: key.alg, kid: key.kid, ...header }) as { alg: string })
    .sign(key.privateKey)
}

/** A compact token from raw parts: objects are JSON-encoded, strings used as they are, then base64url. */
export function assemble(header: object | string, claims: object | string, signature = ''): string {
  const part = (value: object | string) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
  return `${part(header)}.${part(claims)}.${signature}`
}

/** Signs raw header and claims text with an Ed25519 key, bypassing jose's checks on what it signs. */
export async function signRaw(key: Pick<SigningKey, 'privateKey'>, header: string, claims: string): Promise<string> {
  const input = `${Buffer.from(header).toString('base64url')}.${Buffer.from(claims).toString('base64url')}`
  const signature = await subtle.sign('Ed25519', key.privateKey, new TextEncoder().encode(input))
  return `${input}.${Buffer.from(signature).toString('base64url')}`
}

export function segments(token: string): [string, string, string] {
  return token.split('.') as [string, string, string]
}

export const bearer = (token: string) => `Bearer ${token}`

export async function refused(
  authenticator: Pick<JwtAuthenticator, 'authenticate'>,
  authorization: string | undefined,
  code: ErrorCode = 'unauthenticated',
): Promise<KeywrapError> {
  const error = await authenticator.authenticate(authorization).then(
    (principal) => assert.fail(`accepted as ${JSON.stringify(principal)}: ${authorization?.slice(0, 120)}`),
    (caught: unknown) => caught,
  )
  assert.ok(error instanceof KeywrapError, String(error))
  assert.equal(error.code, code, `${error.code}: ${error.message} (${String((error.cause as Error | undefined)?.message)})`)
  return error
}

/** The failure counts of metrics.authFailures, by reason. */
export async function failureCounts(metrics: Metrics): Promise<Record<string, number>> {
  const { values } = await metrics.authFailures.get()
  return Object.fromEntries(values.map((value) => [String(value.labels.reason), value.value]))
}

export function defined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined))
}
