/**
 * The bearer token the plugin's upstream mode presents to keywrap: read from a file (re-read when the
 * file changes, as a projected service-account token is replaced), or a Google ID token from the
 * metadata server whose audience is the keywrap service's URL.
 */
import { readFile, stat } from 'node:fs/promises'
import { decodeUnverified } from '../auth/unverified-jwt.js'

export interface BearerTokenSource {
  /** The token to send now. */
  token(): Promise<string>
  /** The token was refused (401): read it again on the next call whatever the cache says. */
  invalidate(): void
}

/** How often the file's identity (inode, size, mtime) is looked at; reading it is needed only when that changes. */
const FILE_CHECK_INTERVAL_MS = 1000

export class FileBearerToken implements BearerTokenSource {
  private readonly path: string
  private cached: { token: string; identity: string; checkedAt: number } | undefined

  constructor(path: string) {
    this.path = path
  }

  async token(): Promise<string> {
    const cached = this.cached
    if (cached && Date.now() - cached.checkedAt < FILE_CHECK_INTERVAL_MS) return cached.token
    const info = await stat(this.path)
    const identity = `${info.ino}:${info.size}:${info.mtimeMs}`
    if (cached && cached.identity === identity) {
      cached.checkedAt = Date.now()
      return cached.token
    }
    const token = (await readFile(this.path, 'utf8')).trim()
    if (!token) throw new Error(`the token file ${this.path} is empty`)
    this.cached = { token, identity, checkedAt: Date.now() }
    return token
  }

  invalidate(): void {
    this.cached = undefined
  }
}

/** A token is fetched again this long before it expires. */
const ID_TOKEN_MARGIN_MS = 5 * 60_000

export class GoogleIdToken implements BearerTokenSource {
  private readonly url: string
  private cached: { token: string; expiresAt: number } | undefined
  private fetching: Promise<string> | undefined

  constructor(metadataHost: string, audience: string) {
    const query = new URLSearchParams({ audience, format: 'full' })
    this.url = `http://${metadataHost}/computeMetadata/v1/instance/service-accounts/default/identity?${query}`
  }

  async token(): Promise<string> {
    if (this.cached && Date.now() < this.cached.expiresAt - ID_TOKEN_MARGIN_MS) return this.cached.token
    this.fetching ??= this.fetchToken().finally(() => (this.fetching = undefined))
    return this.fetching
  }

  invalidate(): void {
    this.cached = undefined
  }

  private async fetchToken(): Promise<string> {
    const response = await fetch(this.url, { headers: { 'metadata-flavor': 'Google' }, signal: AbortSignal.timeout(5000) })
    if (!response.ok) throw new Error(`the metadata server answered ${response.status} to the ID token request`)
    const token = (await response.text()).trim()
    const { exp } = decodeUnverified(token).claims
    if (typeof exp !== 'number') throw new Error('the metadata server gave an ID token without exp')
    this.cached = { token, expiresAt: exp * 1000 }
    return token
  }
}
