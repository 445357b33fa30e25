/** One key access, as the audit trail records it. Never key material, wrapped keys or tokens. */
import type { KeyOperation } from '../auth/operations.js'
import type { ErrorCode } from '../errors.js'

export type AuditOutcome = 'allowed' | 'denied' | 'failed'
export type CacheLevel = 'l1' | 'l2' | 'provider' | 'none'

export interface AuditEntry {
  readonly time: string
  readonly operation: KeyOperation | 'cache.purge'
  readonly principal: string | undefined
  readonly issuer: string | undefined
  readonly alias: string
  /** Full name of the KEK version used, when one was. */
  readonly keyVersion: string | undefined
  readonly outcome: AuditOutcome
  readonly errorCode: ErrorCode | undefined
  readonly cacheLevel: CacheLevel | undefined
  readonly context: Readonly<Record<string, string>> | undefined
  /** Position of this access in a batch request. */
  readonly batchIndex: number | undefined
  readonly requestId: string
  readonly remoteAddress: string | undefined
  readonly userAgent: string | undefined
  readonly latencyMs: number
}

export const AUDIT_SEVERITY: Readonly<Record<AuditOutcome, 'NOTICE' | 'WARNING' | 'ERROR'>> = {
  allowed: 'NOTICE',
  denied: 'WARNING',
  failed: 'ERROR',
}
