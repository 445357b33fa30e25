/**
 * The plugin's upstream mode: Encrypt and Decrypt become wrap and unwrap calls to a keywrap service
 * over HTTP(S), so that its policy and audit trail stay the only ones; the API server's uid travels
 * as X-Request-Id, the audit entry's clientRequestId there. The key's description is read on a timer
 * (GET /v1/keys/ALIAS, which needs a keys.read grant) for Status and the key_ids.
 */
import { CLIENT_REQUEST_ID } from '../audit/request-id.js'
import { KeywrapError, errorCatalogue, type ErrorCode } from '../errors.js'
import type { KeyDescription } from '../providers/key-provider.js'
import type { BearerTokenSource } from './bearer-tokens.js'
import type { KeyBackend, KmsRequest } from './key-backend.js'

export interface UpstreamOptions {
  /** Base URL of the keywrap service, e.g. https://keywrap-abc-ew.a.run.app */
  readonly url: string
  readonly alias: string
  readonly token: BearerTokenSource
  readonly refreshSeconds: number
  /** Deadline of one call to the service (default 5000 ms). */
  readonly timeoutMs?: number
  readonly log: (message: string, details: object) => void
}

export class UpstreamKeyBackend implements KeyBackend {
  readonly alias: string
  private readonly options: UpstreamOptions
  private readonly base: string
  private description: KeyDescription | undefined
  private failure: string | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(options: UpstreamOptions) {
    this.alias = options.alias
    this.options = options
    this.base = `${options.url.replace(/\/+$/, '')}/v1/keys/${encodeURIComponent(options.alias)}`
  }

  /** Reads the key once (the plugin does not start without it), then every refreshSeconds. */
  async start(): Promise<void> {
    await this.refresh()
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.options.refreshSeconds * 1000)
    this.timer.unref()
  }

  describe(): KeyDescription {
    if (!this.description) throw new Error(`key "${this.alias}" has not been read from ${this.options.url} yet`)
    return this.description
  }

  lastError(): string | undefined {
    if (this.failure) return `keywrap at ${this.options.url} cannot be reached: ${this.failure}`
    return this.description && `keywrap at ${this.options.url} last read it from its provider at ${this.description.refreshedAt}`
  }

  unavailableReason(): undefined {
    return undefined
  }

  async refresh(): Promise<KeyDescription> {
    try {
      const description = (await this.call('GET', this.base, undefined, undefined)) as KeyDescription
      this.description = description
      this.failure = undefined
      return description
    } catch (error) {
      this.failure = (error as Error).message
      this.options.log('reading the key from keywrap failed', { url: this.options.url, alias: this.alias, reason: this.failure })
      throw error
    }
  }

  async wrap(plaintext: Buffer, request: KmsRequest): Promise<{ wrappedKey: string; keyVersion: string }> {
    const body = { plaintext: plaintext.toString('base64') }
    return (await this.call('POST', `${this.base}:wrap`, body, request)) as { wrappedKey: string; keyVersion: string }
  }

  async unwrap(wrappedKey: string, request: KmsRequest): Promise<Buffer> {
    const { plaintext } = (await this.call('POST', `${this.base}:unwrap`, { wrappedKey }, request)) as { plaintext: string }
    return Buffer.from(plaintext, 'base64')
  }

  /** The service audits what reaches it; a Decrypt refused here never did, so the plugin logs it. */
  async recordRefused(error: Error, request: KmsRequest): Promise<void> {
    this.options.log('Decrypt refused', { alias: this.alias, uid: request.uid, reason: error.message })
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
  }

  /** One call with the current token; a 401 re-reads the token and tries once more. */
  private async call(method: 'GET' | 'POST', url: string, body: unknown, request: KmsRequest | undefined): Promise<unknown> {
    let response = await this.send(method, url, body, request)
    if (response.status === 401) {
      this.options.token.invalidate()
      response = await this.send(method, url, body, request)
    }
    const payload = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined
    if (response.ok && payload) return payload
    throw problemError(response.status, payload)
  }

  private async send(method: 'GET' | 'POST', url: string, body: unknown, request: KmsRequest | undefined): Promise<Response> {
    let token: string
    try {
      token = await this.options.token.token()
    } catch (error) {
      throw new KeywrapError('unauthenticated', `the plugin has no token for keywrap: ${(error as Error).message}`)
    }
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      'user-agent': `keywrap-kms-plugin${request?.userAgent ? ` (${request.userAgent})` : ''}`,
    }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (request && CLIENT_REQUEST_ID.test(request.uid)) headers['x-request-id'] = request.uid
    try {
      return await fetch(url, {
        method,
        headers,
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      })
    } catch (error) {
      const reason = error instanceof Error && error.cause instanceof Error ? error.cause.message : (error as Error).message
      throw new KeywrapError('provider_unavailable', `keywrap at ${this.options.url} cannot be reached: ${reason}`, { cause: error })
    }
  }
}

/** A keywrap problem (RFC 9457) as the KeywrapError it was there, so that the gRPC status maps the same. */
function problemError(status: number, payload: Record<string, unknown> | undefined): KeywrapError {
  const code = payload?.code
  const detail = typeof payload?.detail === 'string' ? payload.detail : typeof payload?.title === 'string' ? payload.title : undefined
  if (typeof code === 'string' && code in errorCatalogue) return new KeywrapError(code as ErrorCode, detail)
  return new KeywrapError(status >= 500 ? 'provider_unavailable' : 'internal', `keywrap answered HTTP ${status}`)
}
