/**
 * The three calls of the Kubernetes KMS v2 API over a KeyBackend. Encrypt is a wrap under the primary
 * version, Decrypt an unwrap; the ciphertext is keywrap's wrapped key, and the key_id names the KEK
 * version that made it (key-ids.ts). Status answers from the description the backend last read.
 */
import { status as GrpcStatus, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js'
import { SingleFlight } from '../cache/single-flight.js'
import { parseWrappedKey } from '../crypto/wrapped-key.js'
import { KeywrapError, type ErrorCode } from '../errors.js'
import type { KeyDescription } from '../providers/key-provider.js'
import type { KeyBackend, KmsRequest } from './key-backend.js'
import { KeyIdDirectory, keyIdOf } from './key-ids.js'
import { KMS_API_VERSION, type DecryptRequest, type DecryptResponse, type EncryptRequest, type EncryptResponse, type StatusResponse } from './kms-v2-api.js'

/** The KEK version of a ciphertext, for operators reading etcd; stored there unencrypted, so nothing secret. */
export const VERSION_ANNOTATION = 'version.kms.keywrap.dev'
/** The API server sends a 32-byte seed; keywrap's wrap takes DEKs of up to 64 bytes. */
const MAX_PLAINTEXT_BYTES = 64
/** A key_id no version known has is looked up again at most this often (another node saw a rotation first). */
const UNKNOWN_KEY_ID_REFRESH_MS = 1000

export class KmsPluginError extends Error {
  constructor(
    readonly code: GrpcStatus,
    message: string,
  ) {
    super(message)
    this.name = 'KmsPluginError'
  }
}

export interface KmsV2ServiceOptions {
  /** How long the key may go unread from its provider before Status stops answering "ok". */
  readonly graceMs: number
  /** Operator messages (failures that callers see only as INTERNAL). */
  readonly log: (message: string, details: object) => void
  readonly now?: () => number
}

export class KmsV2Service {
  private readonly backend: KeyBackend
  private readonly keyIds: KeyIdDirectory
  private readonly options: KmsV2ServiceOptions
  private readonly now: () => number
  private readonly refreshes = new SingleFlight<KeyDescription>()
  private lastUnknownRefresh = 0

  constructor(backend: KeyBackend, options: KmsV2ServiceOptions) {
    this.backend = backend
    this.keyIds = new KeyIdDirectory(backend.alias)
    this.options = options
    this.now = options.now ?? Date.now
  }

  status(): StatusResponse {
    const description = this.backend.describe()
    return { version: KMS_API_VERSION, healthz: this.healthz(description), key_id: this.keyIds.primaryKeyId(description) }
  }

  async encrypt(request: EncryptRequest, caller: KmsRequest): Promise<EncryptResponse> {
    const { plaintext } = request
    if (plaintext.length === 0 || plaintext.length > MAX_PLAINTEXT_BYTES) {
      throw new KmsPluginError(GrpcStatus.INVALID_ARGUMENT, `plaintext must be 1 to ${MAX_PLAINTEXT_BYTES} bytes, not ${plaintext.length}`)
    }
    const { wrappedKey, keyVersion } = await this.backend.wrap(plaintext, caller)
    const version = parseWrappedKey(wrappedKey)!.version
    return {
      ciphertext: Buffer.from(wrappedKey, 'latin1'),
      key_id: keyIdOf(this.backend.alias, keyVersion),
      annotations: { [VERSION_ANNOTATION]: Buffer.from(String(version)) },
    }
  }

  async decrypt(request: DecryptRequest, caller: KmsRequest): Promise<DecryptResponse> {
    const wrappedKey = request.ciphertext.toString('latin1')
    const wrapped = parseWrappedKey(wrappedKey)
    if (!wrapped) throw new KmsPluginError(GrpcStatus.INVALID_ARGUMENT, 'the ciphertext is not one keywrap made (a keywrap wrapped key)')
    const annotated = request.annotations[VERSION_ANNOTATION]
    if (annotated !== undefined && annotated.toString() !== String(wrapped.version)) {
      throw await this.refuse(`the ${VERSION_ANNOTATION} annotation (${annotated.toString()}) does not match the ciphertext's key version`, caller)
    }
    let description = this.backend.describe()
    let version = this.keyIds.versionOf(description, request.key_id)
    if (!version && wrapped.version > Math.max(0, ...description.versions.map((v) => v.version))) {
      description = await this.refreshForUnknownKeyId(description)
      version = this.keyIds.versionOf(description, request.key_id)
    }
    if (!version) throw await this.refuse(`key_id "${request.key_id}" was never issued for keywrap key "${this.backend.alias}"`, caller)
    if (version.version !== wrapped.version) throw await this.refuse(`key_id "${request.key_id}" names another key version than the ciphertext's`, caller)
    return { plaintext: await this.backend.unwrap(wrappedKey, caller) }
  }

  /** The gRPC handlers of v2.KeyManagementService. */
  implementation(): UntypedServiceImplementation {
    return {
      Status: (_call: ServerUnaryCall<unknown, StatusResponse>, callback: sendUnaryData<StatusResponse>) => {
        try {
          callback(null, this.status())
        } catch (error) {
          callback(this.toStatus(error, 'Status'))
        }
      },
      Encrypt: (call: ServerUnaryCall<EncryptRequest, EncryptResponse>, callback: sendUnaryData<EncryptResponse>) => {
        this.encrypt(call.request, requestOf(call)).then(
          (response) => callback(null, response),
          (error: unknown) => callback(this.toStatus(error, 'Encrypt')),
        )
      },
      Decrypt: (call: ServerUnaryCall<DecryptRequest, DecryptResponse>, callback: sendUnaryData<DecryptResponse>) => {
        this.decrypt(call.request, requestOf(call)).then(
          (response) => callback(null, response),
          (error: unknown) => callback(this.toStatus(error, 'Decrypt')),
        )
      },
    }
  }

  private healthz(description: KeyDescription): string {
    const ageMs = this.now() - Date.parse(description.refreshedAt)
    if (ageMs > this.options.graceMs) {
      // healthz is shown by the API server; like the key_id, it does not name the KMS resource.
      const resource = description.uri.replace(/^[a-z-]+:\/\//, '')
      const reason = (this.backend.lastError() ?? 'no read has completed since').replaceAll(resource, 'the key')
      return `keywrap key "${this.backend.alias}" has not been read from its provider for ${Math.round(ageMs / 1000)} s (grace ${Math.round(this.options.graceMs / 1000)} s): ${reason}`
    }
    const unavailable = this.backend.unavailableReason()
    return unavailable === undefined ? 'ok' : `keywrap key "${this.backend.alias}": ${unavailable}`
  }

  private async refreshForUnknownKeyId(current: KeyDescription): Promise<KeyDescription> {
    if (this.now() - this.lastUnknownRefresh < UNKNOWN_KEY_ID_REFRESH_MS) return current
    this.lastUnknownRefresh = this.now()
    return this.refreshes.run('', () => this.backend.refresh()).catch(() => current)
  }

  /** An attempt the plugin refuses before the key is used: audited as a denied unwrap, then answered. */
  private async refuse(message: string, caller: KmsRequest): Promise<KmsPluginError> {
    await this.backend.recordRefused(new KeywrapError('cannot_unwrap', message), caller).catch(() => undefined)
    return new KmsPluginError(GrpcStatus.INVALID_ARGUMENT, message)
  }

  private toStatus(error: unknown, method: string): { code: GrpcStatus; details: string } {
    if (error instanceof KmsPluginError) return { code: error.code, details: error.message }
    if (error instanceof KeywrapError) return { code: GRPC_CODES[error.code], details: error.detail ?? error.message }
    this.options.log('KMS plugin call failed', { method, error: error instanceof Error ? error.message : String(error) })
    return { code: GrpcStatus.INTERNAL, details: 'keywrap failed to handle the call' }
  }
}

function requestOf(call: ServerUnaryCall<{ uid: string }, unknown>): KmsRequest {
  const userAgent = call.metadata.get('user-agent')[0]
  return { uid: call.request.uid, userAgent: typeof userAgent === 'string' ? userAgent : undefined }
}

const GRPC_CODES: Readonly<Record<ErrorCode, GrpcStatus>> = {
  invalid_request: GrpcStatus.INVALID_ARGUMENT,
  invalid_wrapped_key: GrpcStatus.INVALID_ARGUMENT,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  forbidden: GrpcStatus.PERMISSION_DENIED,
  context_not_allowed: GrpcStatus.PERMISSION_DENIED,
  reason_required: GrpcStatus.PERMISSION_DENIED,
  key_not_found: GrpcStatus.NOT_FOUND,
  not_found: GrpcStatus.NOT_FOUND,
  request_timeout: GrpcStatus.DEADLINE_EXCEEDED,
  headers_too_large: GrpcStatus.INVALID_ARGUMENT,
  method_not_allowed: GrpcStatus.UNIMPLEMENTED,
  key_version_not_enabled: GrpcStatus.FAILED_PRECONDITION,
  key_version_destroyed: GrpcStatus.FAILED_PRECONDITION,
  payload_too_large: GrpcStatus.INVALID_ARGUMENT,
  unsupported_media_type: GrpcStatus.INVALID_ARGUMENT,
  cannot_unwrap: GrpcStatus.INVALID_ARGUMENT,
  rate_limited: GrpcStatus.RESOURCE_EXHAUSTED,
  internal: GrpcStatus.INTERNAL,
  provider_misconfigured: GrpcStatus.INTERNAL,
  provider_unavailable: GrpcStatus.UNAVAILABLE,
  issuer_unavailable: GrpcStatus.UNAVAILABLE,
  cache_unavailable: GrpcStatus.UNAVAILABLE,
  audit_unavailable: GrpcStatus.UNAVAILABLE,
  overloaded: GrpcStatus.UNAVAILABLE,
}
