// Scriptable misbehaviour. A call's fate is decided when it arrives (so the
// `*Next` counters are consumed in arrival order), then carried out by the server.
import type { DecryptResponse, EncryptResponse } from './messages.js'

export const KMS_METHODS = ['Encrypt', 'Decrypt', 'GetCryptoKey', 'ListCryptoKeyVersions', 'GetCryptoKeyVersion', 'AsymmetricSign', 'GetPublicKey'] as const
export type KmsMethod = (typeof KMS_METHODS)[number]

export function isKmsMethod(method: string): method is KmsMethod {
  return (KMS_METHODS as readonly string[]).includes(method)
}

/**
 * One set of faults. Every fault in the set applies only to `methods` (every
 * implemented RPC when omitted); `*Next` counters count down only on those calls.
 */
export interface Faults {
  methods?: KmsMethod[]
  /** Delay before answering: one value for every method in scope, or per method. */
  latencyMs?: number | Partial<Record<KmsMethod, number>>
  /** Never answer; the call ends when the client's deadline passes or it cancels. */
  hang?: boolean
  /** Fraction (0..1) of calls answered UNAVAILABLE. */
  unavailableRate?: number
  /** Answer the next N calls UNAVAILABLE. */
  unavailableNext?: number
  /** Answer the next N calls RESOURCE_EXHAUSTED (quota). */
  resourceExhaustedNext?: number
  /** Encrypt: wrong ciphertext_crc32c. Decrypt: wrong plaintext_crc32c. */
  corruptResponseCrc32c?: boolean
  /** Decrypt: flip a byte of the plaintext, keep the original plaintext_crc32c. */
  corruptPlaintext?: boolean
  /** Encrypt: flip a byte of the ciphertext, keep the original ciphertext_crc32c. */
  corruptCiphertext?: boolean
  /** Ignore request checksums: no INVALID_ARGUMENT on mismatch, verified_* always false. */
  unverifiedChecksums?: boolean
}

export type InjectedFault =
  'latency' | 'hang' | 'unavailable' | 'resourceExhausted' | 'corruptResponseCrc32c' | 'corruptPlaintext' | 'corruptCiphertext' | 'unverifiedChecksums'

export interface CallPlan {
  delayMs: number
  hang: boolean
  /** Answer with this error instead of running the RPC. */
  failWith: 'unavailable' | 'resourceExhausted' | undefined
  corruptResponseCrc32c: boolean
  corruptPlaintext: boolean
  corruptCiphertext: boolean
  unverifiedChecksums: boolean
}

/** Decides what happens to one call; decrements the `*Next` counters it consumes. */
export function planCall(method: KmsMethod, faultSets: readonly Faults[], random: () => number): CallPlan {
  const plan: CallPlan = {
    delayMs: 0,
    hang: false,
    failWith: undefined,
    corruptResponseCrc32c: false,
    corruptPlaintext: false,
    corruptCiphertext: false,
    unverifiedChecksums: false,
  }
  for (const faults of faultSets) {
    if (faults.methods && !faults.methods.includes(method)) continue
    plan.delayMs = Math.max(plan.delayMs, latencyFor(faults, method))
    plan.hang ||= faults.hang === true
    plan.corruptResponseCrc32c ||= faults.corruptResponseCrc32c === true
    plan.corruptPlaintext ||= faults.corruptPlaintext === true
    plan.corruptCiphertext ||= faults.corruptCiphertext === true
    plan.unverifiedChecksums ||= faults.unverifiedChecksums === true
  }
  if (plan.hang) return plan
  plan.failWith = takeFailure(method, faultSets, random)
  return plan
}

/** The fault names a plan actually applies to `method`, for the request log. */
export function describePlan(method: KmsMethod, plan: CallPlan): InjectedFault[] {
  const injected: InjectedFault[] = []
  if (plan.delayMs > 0) injected.push('latency')
  if (plan.hang) return [...injected, 'hang']
  if (plan.failWith) return [...injected, plan.failWith]
  if (plan.unverifiedChecksums && (method === 'Encrypt' || method === 'Decrypt')) {
    injected.push('unverifiedChecksums')
  }
  if (plan.corruptResponseCrc32c && (method === 'Encrypt' || method === 'Decrypt')) {
    injected.push('corruptResponseCrc32c')
  }
  if (plan.corruptCiphertext && method === 'Encrypt') injected.push('corruptCiphertext')
  if (plan.corruptPlaintext && method === 'Decrypt') injected.push('corruptPlaintext')
  return injected
}

export function tamperEncryptResponse(response: EncryptResponse, plan: CallPlan): EncryptResponse {
  return {
    ...response,
    ciphertext: plan.corruptCiphertext ? flipOneByte(response.ciphertext) : response.ciphertext,
    ciphertextCrc32c: plan.corruptResponseCrc32c ? { value: wrongChecksum(response.ciphertextCrc32c.value) } : response.ciphertextCrc32c,
  }
}

export function tamperDecryptResponse(response: DecryptResponse, plan: CallPlan): DecryptResponse {
  return {
    ...response,
    plaintext: plan.corruptPlaintext ? flipOneByte(response.plaintext) : response.plaintext,
    plaintextCrc32c: plan.corruptResponseCrc32c ? { value: wrongChecksum(response.plaintextCrc32c.value) } : response.plaintextCrc32c,
  }
}

function latencyFor(faults: Faults, method: KmsMethod): number {
  const latency = faults.latencyMs
  if (latency === undefined) return 0
  return typeof latency === 'number' ? latency : (latency[method] ?? 0)
}

function takeFailure(method: KmsMethod, faultSets: readonly Faults[], random: () => number): CallPlan['failWith'] {
  const inScope = faultSets.filter((f) => !f.methods || f.methods.includes(method))
  const quota = inScope.find((f) => (f.resourceExhaustedNext ?? 0) > 0)
  if (quota) {
    quota.resourceExhaustedNext = (quota.resourceExhaustedNext ?? 0) - 1
    return 'resourceExhausted'
  }
  const outage = inScope.find((f) => (f.unavailableNext ?? 0) > 0)
  if (outage) {
    outage.unavailableNext = (outage.unavailableNext ?? 0) - 1
    return 'unavailable'
  }
  if (inScope.some((f) => (f.unavailableRate ?? 0) > 0 && random() < (f.unavailableRate ?? 0))) {
    return 'unavailable'
  }
  return undefined
}

function flipOneByte(data: Buffer): Buffer {
  if (data.length === 0) return Buffer.from([0x01])
  const copy = Buffer.from(data)
  const last = copy.length - 1
  copy[last] = (copy[last] ?? 0) ^ 0x01
  return copy
}

function wrongChecksum(value: number): number {
  return (value ^ 0xdeadbeef) >>> 0
}
