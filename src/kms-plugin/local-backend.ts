/**
 * The plugin's local mode: keywrap's KeyService in this process, built from keywrap's configuration
 * like the HTTP service (the same registry, cache, policy and audit sink), with one fixed principal.
 */
import { randomUUID } from 'node:crypto'
import { CLIENT_REQUEST_ID } from '../audit/request-id.js'
import type { Principal } from '../auth/principal.js'
import { closeKeyAccess, type KeyAccessDependencies } from '../compose.js'
import { ProviderGate } from '../keys/provider-gate.js'
import { KeywrapError } from '../errors.js'
import { KeyService, type Caller } from '../keys/key-service.js'
import { OPERATIONS } from '../operations.js'
import type { KeyProvider } from '../providers/key-provider.js'
import type { KeyBackend, KmsRequest } from './key-backend.js'

export class LocalKeyBackend implements KeyBackend {
  readonly alias: string
  private readonly deps: KeyAccessDependencies
  private readonly keys: KeyService
  private readonly provider: KeyProvider
  private readonly principal: Principal

  constructor(deps: KeyAccessDependencies, alias: string, principal: Principal) {
    const provider = deps.registry.get(alias)
    if (!provider) throw new Error(`no key has the alias "${alias}" (configured: ${deps.registry.aliases().join(', ')})`)
    this.alias = alias
    this.deps = deps
    this.provider = provider
    this.principal = principal
    this.keys = new KeyService({ ...deps, providerGate: new ProviderGate(deps.config.providerCalls) })
  }

  describe() {
    return this.provider.describe()
  }

  lastError(): string | undefined {
    return this.deps.registry.status().find((status) => status.alias === this.alias)?.lastError
  }

  unavailableReason(): string | undefined {
    return this.deps.audit.healthy?.() === false ? 'the audit trail cannot be written' : undefined
  }

  refresh() {
    return this.provider.refresh()
  }

  wrap(plaintext: Buffer, request: KmsRequest) {
    return this.keys.wrap(this.callerOf(request), this.alias, { plaintext })
  }

  async unwrap(wrappedKey: string, request: KmsRequest): Promise<Buffer> {
    return (await this.keys.unwrap(this.callerOf(request), this.alias, { wrappedKey })).plaintext
  }

  recordRefused(error: Error, request: KmsRequest): Promise<void> {
    const refusal = error instanceof KeywrapError ? error : new KeywrapError('cannot_unwrap', error.message)
    return this.keys.recordRefused(this.callerOf(request), this.alias, OPERATIONS.unwrap, refusal)
  }

  async close(): Promise<void> {
    await closeKeyAccess(this.deps)
  }

  private callerOf(request: KmsRequest): Caller {
    return {
      principal: this.principal,
      requestId: randomUUID(),
      // The API server's uid, as a client's X-Request-ID is recorded.
      ...(CLIENT_REQUEST_ID.test(request.uid) && { clientRequestId: request.uid }),
      ...(request.userAgent !== undefined && { userAgent: request.userAgent }),
    }
  }
}
