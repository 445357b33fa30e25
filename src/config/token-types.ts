/**
 * The JWT `typ` header an issuer's tokens may carry (RFC 8725 §3.11: explicit typing keeps a token
 * made for one purpose, e.g. a logout or DPoP token, from being accepted as another). `typ` is a media
 * type: compared without case and with its `application/` prefix optional (RFC 7515 §4.1.9).
 */

/** `null` stands for a token without `typ`. */
export type TokenType = string | null

/** Absent, `JWT` (ID tokens, most issuers) and `at+jwt` (RFC 9068 access tokens). */
export const DEFAULT_TOKEN_TYPES: readonly TokenType[] = [null, 'JWT', 'at+jwt']

/** The comparable form of a `typ` value; undefined when it is not a string at all. */
export function normalizeTokenType(typ: unknown): TokenType | undefined {
  if (typ === undefined || typ === null) return null
  if (typeof typ !== 'string') return undefined
  const lower = typ.toLowerCase()
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower
}

/** The accepted set, normalised once, for lookups per token. */
export function tokenTypeSet(types: readonly TokenType[] = DEFAULT_TOKEN_TYPES): ReadonlySet<TokenType> {
  return new Set(types.map((type) => normalizeTokenType(type)).filter((type): type is TokenType => type !== undefined))
}
