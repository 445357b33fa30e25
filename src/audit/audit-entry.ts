/** One key access, as the audit trail records it. Never key material, wrapped keys, tokens or checksums of plaintext. */
import type { AuditOperation } from '../operations.js'
import type { ErrorCode } from '../errors.js'
import { isCheckpointEntry, type CheckpointEntry } from './checkpoint.js'

export type AuditOutcome = 'allowed' | 'denied' | 'failed'
export type CacheLevel = 'l1' | 'l2' | 'provider' | 'none'

export interface AuditEntry {
  /** When the access was decided, RFC 3339 with milliseconds (`new Date().toISOString()`). */
  readonly time: string
  readonly operation: AuditOperation
  readonly principal: string | undefined
  readonly issuer: string | undefined
  readonly alias: string
  /** Full name of the KEK version used, when one was. */
  readonly keyVersion: string | undefined
  /** Rewrap: full name of the version of the wrapped key presented (keyVersion names the version that wrapped it anew). */
  readonly sourceKeyVersion?: string
  readonly outcome: AuditOutcome
  readonly errorCode: ErrorCode | undefined
  readonly cacheLevel: CacheLevel | undefined
  readonly context: Readonly<Record<string, string>> | undefined
  /**
   * fingerprintWrappedKey() of the wrapped key the access used (unwrap, rewrap) or produced
   * (generateDataKey, wrap): lets an investigator follow one DEK through the trail without the
   * trail holding anything that unwraps.
   */
  readonly wrappedKeyFingerprint?: string
  /** fingerprintWrappedKey() of the wrapped key a rewrap produced. */
  readonly rewrappedKeyFingerprint?: string
  /** Position of this access in a batch request. */
  readonly batchIndex: number | undefined
  /** Items of a batch refused whole (no grant, over the rate limit): one entry for all of them. */
  readonly batchSize?: number
  /** Why a request was refused before it reached a key (authentication, validation), or which grant condition it did not meet, in words. */
  readonly reason?: string
  /** Why the caller said it made the call: its x-keywrap-reason header, as sent (1-256 printable ASCII characters). */
  readonly callerReason?: string
  /**
   * On the summary entry of a client address over the failed-authentication limit: how many of its
   * requests were refused (429) in the window without an entry of their own.
   */
  readonly unrecorded?: number
  /** The server's id of the request (also its X-Request-ID response header). */
  readonly requestId: string
  /** The X-Request-ID the client sent, if it had the shape of one. */
  readonly clientRequestId?: string
  /** `projects/PROJECT/traces/TRACE`, from parseTraceContext(). */
  readonly trace?: string
  /** 16 hex digits, from parseTraceContext(). */
  readonly spanId?: string
  readonly remoteAddress: string | undefined
  /** The socket's peer, when it is not remoteAddress (the proxy that forwarded the request). */
  readonly peerAddress?: string
  readonly userAgent: string | undefined
  readonly latencyMs: number
}

export const AUDIT_SEVERITY: Readonly<Record<AuditOutcome, 'NOTICE' | 'WARNING' | 'ERROR'>> = {
  allowed: 'NOTICE',
  denied: 'WARNING',
  failed: 'ERROR',
}

/** What a sink writes: key accesses, and the chain's signed checkpoints (checkpoint.ts). */
export type TrailEntry = AuditEntry | CheckpointEntry

export const CHECKPOINT_SEVERITY = 'INFO'

/** Cloud Logging severity of a written entry. */
export function severityOf(entry: TrailEntry): typeof CHECKPOINT_SEVERITY | 'NOTICE' | 'WARNING' | 'ERROR' {
  return isCheckpointEntry(entry) ? CHECKPOINT_SEVERITY : AUDIT_SEVERITY[entry.outcome]
}

/** The label every audit entry carries, in every sink; log sinks and views select on it. */
export const AUDIT_LABELS: Readonly<Record<string, string>> = Object.freeze({ audit: 'true' })

/** The one-line summary Cloud Logging shows for an entry; not part of the hashed record. */
export function auditMessage(entry: TrailEntry): string {
  if (isCheckpointEntry(entry)) return `audit checkpoint ${entry.checkpoint.event} ${entry.checkpoint.chain} seq ${entry.checkpoint.lastSeq}`
  return `audit ${entry.operation} ${entry.alias} ${entry.outcome}${entry.errorCode ? ` ${entry.errorCode}` : ''}`
}
