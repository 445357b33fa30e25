// A Cloud KMS stand-in for tests: serves google.cloud.kms.v1.KeyManagementService
// over real gRPC on 127.0.0.1 so the real @google-cloud/kms client can talk to it.
//
// Connect the real client with (verified in kms-stand-in.test.ts):
//   new KeyManagementServiceClient({
//     apiEndpoint: '127.0.0.1', port,
//     sslCreds: grpc.credentials.createInsecure(),   // `grpc` from 'google-gax'
//     universeDomain: 'googleapis.com',
//   })
// sslCreds makes gax use the channel as-is, without asking google-auth-library for
// credentials; an explicit universeDomain stops gax from asking it for the
// universe, which would otherwise look for Application Default Credentials.
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js'
import { KmsError } from './kms-stand-in/errors.js'
import {
  describePlan,
  isKmsMethod,
  KMS_METHODS,
  planCall,
  tamperDecryptResponse,
  tamperEncryptResponse,
  type CallPlan,
  type Faults,
  type InjectedFault,
  type KmsMethod,
} from './kms-stand-in/faults.js'
import { KeyStore, type CreateKeyOptions, type KeySnapshot } from './kms-stand-in/key-store.js'
import type { DecryptRequest, EncryptRequest, GetRequest, ListCryptoKeyVersionsRequest, VersionState } from './kms-stand-in/messages.js'
import * as rpc from './kms-stand-in/rpc-handlers.js'
import * as signing from './kms-stand-in/signing-keys.js'
import { keyManagementServiceDefinition } from './kms-stand-in/service-definition.js'

export { crc32c } from '../../src/crypto/crc32c.js'
export { KMS_METHODS } from './kms-stand-in/faults.js'
export { VERSION_STATES } from './kms-stand-in/messages.js'
export type { CreateKeyOptions, Faults, InjectedFault, KeySnapshot, KmsMethod, VersionState }

export interface KmsStandInOptions {
  /** CryptoKey names whose every RPC answers PERMISSION_DENIED. */
  deniedKeys?: Iterable<string>
  /** Source of randomness for `unavailableRate` (default Math.random). */
  random?: () => number
}

export interface StartOptions {
  /** 0 (default) picks a free port. */
  port?: number
  host?: string
}

export interface RunningKmsStandIn {
  port: number
  /** `host:port`, e.g. for KMS_EMULATOR_HOST. */
  address: string
  close(): Promise<void>
}

export interface RecordedRequest {
  method: string
  /** `name` (or `parent` for List calls) of the request; payloads are never recorded. */
  name: string
  time: Date
  faults: InjectedFault[]
}

/** Calls received per RPC, including ones answered with an injected fault. */
export type CallCounts = Record<KmsMethod, number> & Partial<Record<string, number>>

export class KmsStandIn {
  readonly deniedKeys: Set<string>
  readonly calls: CallCounts = zeroCounts()
  readonly requests: RecordedRequest[] = []

  readonly #store = new KeyStore()
  readonly #signingKeys = new signing.SigningKeyStore()
  readonly #random: () => number
  #faultSets: Faults[] = [{}]
  #server: Server | undefined
  /** Releases every call parked in a latency or hang fault; used by close(). */
  readonly #parkedCalls = new Set<() => void>()

  constructor(options: KmsStandInOptions = {}) {
    this.deniedKeys = new Set(options.deniedKeys)
    this.#random = options.random ?? Math.random
  }

  // ---- key state -------------------------------------------------------------

  createKey(name: string, options?: CreateKeyOptions): KeySnapshot {
    return this.#store.createKey(name, options)
  }

  /** Adds a new ENABLED version, makes it primary and returns its number. */
  rotate(name: string): number {
    return this.#store.rotate(name)
  }

  setState(name: string, version: number, state: VersionState): void {
    this.#store.setState(name, version, state)
  }

  setPrimary(name: string, version: number): void {
    this.#store.setPrimary(name, version)
  }

  getKey(name: string): KeySnapshot {
    return this.#store.getKey(name)
  }

  keyNames(): string[] {
    return this.#store.keyNames()
  }

  /**
   * Creates an ASYMMETRIC_SIGN key (EC_SIGN_P256_SHA256, a real P-256 key pair per version) for
   * AsymmetricSign and GetPublicKey; returns the name of its version 1.
   */
  createSigningKey(name: string, versions = 1): string {
    return this.#signingKeys.create(name, versions)
  }

  /** Disables, re-enables or destroys a signing key's version (AsymmetricSign then answers FAILED_PRECONDITION). */
  setSigningKeyState(name: string, version: number, state: VersionState): void {
    this.#signingKeys.setState(name, version, state)
  }

  // ---- faults ----------------------------------------------------------------

  /** The first fault set; mutate it to change faults while the server runs. */
  get faults(): Faults {
    return this.#faultSets[0]!
  }

  /** Replaces all faults. Pass several sets to scope different faults to different methods. */
  setFaults(faults: Faults | readonly Faults[]): void {
    const sets = isFaultList(faults) ? faults : [faults]
    this.#faultSets = sets.length > 0 ? sets.map((f) => ({ ...f })) : [{}]
  }

  clearFaults(): void {
    this.#faultSets = [{}]
  }

  // ---- observation -----------------------------------------------------------

  resetCounters(): void {
    for (const method of Object.keys(this.calls)) delete this.calls[method]
    Object.assign(this.calls, zeroCounts())
    this.requests.length = 0
  }

  /** Calls currently held back by a latency or hang fault. */
  get parkedCalls(): number {
    return this.#parkedCalls.size
  }

  // ---- server ----------------------------------------------------------------

  async start(options: StartOptions = {}): Promise<RunningKmsStandIn> {
    if (this.#server) throw new Error('KmsStandIn is already running')
    const host = options.host ?? '127.0.0.1'
    const server = new Server()
    server.addService(keyManagementServiceDefinition(), this.#implementation())
    const hostPart = host.includes(':') ? `[${host}]` : host
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${hostPart}:${options.port ?? 0}`, ServerCredentials.createInsecure(), (error, boundPort) =>
        error ? reject(error) : resolve(boundPort),
      )
    })
    this.#server = server
    return {
      port,
      address: `${hostPart}:${port}`,
      close: async () => this.#close(server),
    }
  }

  #close(server: Server): void {
    server.forceShutdown()
    for (const release of [...this.#parkedCalls]) release()
    if (this.#server === server) this.#server = undefined
  }

  #implementation(): UntypedServiceImplementation {
    const implementation: UntypedServiceImplementation = {}
    for (const method of Object.keys(keyManagementServiceDefinition())) {
      implementation[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        void this.#handle(method, call, callback)
      }
    }
    return implementation
  }

  async #handle(method: string, call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): Promise<void> {
    const entry = this.#record(method, call.request)
    if (!isKmsMethod(method)) {
      callback(KmsError.unimplemented(method).toStatus(), null)
      return
    }
    const plan = planCall(method, this.#faultSets, this.#random)
    entry.faults = describePlan(method, plan)
    if (plan.delayMs > 0 || plan.hang) {
      const outcome = await this.#park(call, plan.hang ? Infinity : plan.delayMs)
      if (outcome === 'cancelled') return // nobody is listening any more
    }
    try {
      if (plan.failWith === 'unavailable') throw KmsError.unavailable()
      if (plan.failWith === 'resourceExhausted') throw KmsError.quotaExceeded()
      callback(null, this.#run(method, call.request, plan))
    } catch (error) {
      callback(error instanceof KmsError ? error.toStatus() : { code: status.INTERNAL, details: String(error) }, null)
    }
  }

  #run(method: KmsMethod, request: unknown, plan: CallPlan): unknown {
    const ctx: rpc.RpcContext = {
      store: this.#store,
      deniedKeys: this.deniedKeys,
      verifyChecksums: !plan.unverifiedChecksums,
    }
    switch (method) {
      case 'Encrypt':
        return tamperEncryptResponse(rpc.encrypt(ctx, request as EncryptRequest), plan)
      case 'Decrypt':
        return tamperDecryptResponse(rpc.decrypt(ctx, request as DecryptRequest), plan)
      case 'GetCryptoKey':
        return rpc.getCryptoKey(ctx, request as GetRequest)
      case 'GetCryptoKeyVersion':
        return rpc.getCryptoKeyVersion(ctx, request as GetRequest)
      case 'ListCryptoKeyVersions':
        return rpc.listCryptoKeyVersions(ctx, request as ListCryptoKeyVersionsRequest)
      case 'AsymmetricSign': {
        const req = request as signing.AsymmetricSignRequest
        return signing.asymmetricSign(this.#signingVersion(req.name, 'cloudkms.cryptoKeyVersions.useToSign'), req, ctx.verifyChecksums)
      }
      case 'GetPublicKey': {
        const { name } = request as GetRequest
        return signing.getPublicKey(this.#signingVersion(name, 'cloudkms.cryptoKeyVersions.viewPublicKey'), name)
      }
    }
  }

  /** Permission before existence, as for the other keys. */
  #signingVersion(name: string, permission: string) {
    const keyName = name.replace(/\/cryptoKeyVersions\/[^/]*$/, '')
    if (this.deniedKeys.has(keyName)) throw KmsError.permissionDenied(permission, name)
    return this.#signingKeys.find(name)
  }

  #record(method: string, request: unknown): RecordedRequest {
    this.calls[method] = (this.calls[method] ?? 0) + 1
    const fields = (request ?? {}) as { name?: unknown; parent?: unknown }
    const name = typeof fields.name === 'string' ? fields.name : typeof fields.parent === 'string' ? fields.parent : ''
    const entry: RecordedRequest = { method, name, time: new Date(), faults: [] }
    this.requests.push(entry)
    return entry
  }

  /** Waits `ms` (Infinity = until cancelled), ending early if the client cancels or its deadline passes. */
  #park(call: ServerUnaryCall<unknown, unknown>, ms: number): Promise<'elapsed' | 'cancelled'> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const finish = (outcome: 'elapsed' | 'cancelled') => {
        clearTimeout(timer)
        call.off('cancelled', onCancelled)
        this.#parkedCalls.delete(onCancelled)
        resolve(outcome)
      }
      const onCancelled = () => finish('cancelled')
      if (call.cancelled) return finish('cancelled')
      call.once('cancelled', onCancelled)
      this.#parkedCalls.add(onCancelled)
      if (Number.isFinite(ms)) timer = setTimeout(() => finish('elapsed'), ms)
    })
  }
}

function isFaultList(faults: Faults | readonly Faults[]): faults is readonly Faults[] {
  return Array.isArray(faults)
}

function zeroCounts(): CallCounts {
  return Object.fromEntries(KMS_METHODS.map((m) => [m, 0])) as CallCounts
}
