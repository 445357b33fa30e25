/**
 * Reads a compact JWT's header and claims before its signature is checked, so that the authenticator
 * can refuse what it never wants to verify (embedded keys, key URLs, duplicate members) and find the
 * issuer whose keys to use. Nothing read here is trusted beyond that.
 */

export interface UnverifiedJwt {
  readonly header: Readonly<Record<string, unknown>>
  readonly claims: Readonly<Record<string, unknown>>
}

export type UnverifiedProblem = 'malformed' | 'duplicate_member'

export class UnverifiedJwtError extends Error {
  constructor(readonly problem: UnverifiedProblem) {
    super(problem === 'malformed' ? 'the token is not a compact JWS with JSON header and claims' : 'a JSON object names a member twice')
    this.name = 'UnverifiedJwtError'
  }
}

// jose decodes claims with a fatal decoder too, so both parsers see the same text.
const UTF8 = new TextDecoder('utf-8', { fatal: true })

export function decodeUnverified(token: string): UnverifiedJwt {
  const segments = token.split('.')
  if (segments.length !== 3) throw new UnverifiedJwtError('malformed')
  return { header: decodeSegment(segments[0]!), claims: decodeSegment(segments[1]!) }
}

function decodeSegment(segment: string): Record<string, unknown> {
  let text: string
  let value: unknown
  try {
    text = UTF8.decode(Buffer.from(segment, 'base64url'))
    value = JSON.parse(text)
  } catch {
    throw new UnverifiedJwtError('malformed')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UnverifiedJwtError('malformed')
  // JSON.parse keeps the last of two equal names; another parser may keep the first (RFC 8725 §2.8).
  if (hasDuplicateMembers(text)) throw new UnverifiedJwtError('duplicate_member')
  return value as Record<string, unknown>
}

/**
 * Whether any object in `text` (which must already parse as JSON) names a member twice. Names are
 * compared after unescaping, so `"\u0061lg"` and `"alg"` collide.
 */
export function hasDuplicateMembers(text: string): boolean {
  // One entry per open container: the names seen so far for an object, undefined for an array.
  const containers: (Set<string> | undefined)[] = []
  let expectingName = false
  for (let index = 0; index < text.length; index++) {
    const char = text[index]
    if (char === '"') {
      let end = index + 1
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1
      const names = containers.at(-1)
      if (names && expectingName) {
        const name = JSON.parse(text.slice(index, end + 1)) as string
        if (names.has(name)) return true
        names.add(name)
        expectingName = false
      }
      index = end
    } else if (char === '{') {
      containers.push(new Set())
      expectingName = true
    } else if (char === '[') {
      containers.push(undefined)
      expectingName = false
    } else if (char === '}' || char === ']') {
      containers.pop()
      expectingName = false
    } else if (char === ',') {
      expectingName = containers.at(-1) !== undefined
    }
  }
  return false
}
