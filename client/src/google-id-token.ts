/**
 * A token function for Cloud Run service-to-service calls: a Google-signed ID token for `audience`
 * (the keywrap service's URL, or the audience it is configured to accept). With google-auth-library
 * installed (an optional peer dependency), through Application Default Credentials: a service
 * account key file, gcloud's credentials, or the metadata server. Without it, straight from the
 * metadata server (Cloud Run, GKE, Compute Engine). Tokens are reused until a minute before expiry.
 */
import { KeywrapError } from './keywrap-error.js'

export interface GoogleIdTokenOptions {
  audience: string
  /**
   * The metadata server's host[:port] when google-auth-library is not installed (default: the
   * GCE_METADATA_HOST environment variable, as Google's libraries read it, else metadata.google.internal).
   */
  metadataHost?: string
}

interface AuthLibrary {
  GoogleAuth: new () => { getIdTokenClient(audience: string): Promise<{ idTokenProvider: { fetchIdToken(audience: string): Promise<string> } }> }
}

const REFRESH_BEFORE_EXPIRY_MS = 60_000
const FALLBACK_LIFETIME_MS = 5 * 60_000
const METADATA_TIMEOUT_MS = 5_000
const AUTH_LIBRARY = 'google-auth-library'

export function googleIdToken(options: GoogleIdTokenOptions): () => Promise<string> {
  if (typeof options.audience !== 'string' || options.audience === '') throw new TypeError('googleIdToken needs an audience')
  let current: { token: string; refreshAt: number } | undefined
  let fetching: Promise<string> | undefined
  return async () => {
    if (current && Date.now() < current.refreshAt) return current.token
    fetching ??= fetchIdToken(options)
      .then((token) => {
        current = { token, refreshAt: expiresAt(token) - REFRESH_BEFORE_EXPIRY_MS }
        return token
      })
      .finally(() => (fetching = undefined))
    return fetching
  }
}

async function fetchIdToken(options: GoogleIdTokenOptions): Promise<string> {
  const library = await loadAuthLibrary()
  if (library) {
    const client = await new library.GoogleAuth().getIdTokenClient(options.audience)
    return client.idTokenProvider.fetchIdToken(options.audience)
  }
  const host = options.metadataHost ?? process.env.GCE_METADATA_HOST ?? 'metadata.google.internal'
  const url = `http://${host}/computeMetadata/v1/instance/service-accounts/default/identity?audience=${encodeURIComponent(options.audience)}&format=full`
  const response = await fetch(url, { headers: { 'metadata-flavor': 'Google' }, signal: AbortSignal.timeout(METADATA_TIMEOUT_MS) })
  if (!response.ok)
    throw new KeywrapError('token_unavailable', { status: response.status, detail: `the metadata server answered ${response.status} for an ID token` })
  return (await response.text()).trim()
}

async function loadAuthLibrary(): Promise<AuthLibrary | undefined> {
  try {
    return (await import(AUTH_LIBRARY)) as AuthLibrary
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(`'${AUTH_LIBRARY}'`)
    if (missing) return undefined
    throw error
  }
}

/** When the token expires (its `exp` claim, read without verifying: the service verifies it). */
function expiresAt(token: string): number {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown }
    if (typeof claims.exp === 'number') return claims.exp * 1000
  } catch {
    // not a JWT: used for a short while
  }
  return Date.now() + FALLBACK_LIFETIME_MS
}
