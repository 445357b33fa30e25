/**
 * Where the KMS plugin's Encrypt and Decrypt go: keywrap's own KeyService in this process (local), or
 * a keywrap service over HTTP(S) (upstream). Either keeps the alias's description fresh in the
 * background, so that Status answers from memory.
 */
import type { KeyDescription } from '../providers/key-provider.js'

export interface KmsRequest {
  /** The API server's uid of the request; the audit entry's clientRequestId. */
  readonly uid: string
  /** The caller's gRPC user-agent, for the audit entry. */
  readonly userAgent: string | undefined
}

export interface KeyBackend {
  readonly alias: string
  /** The alias's key as last read; throws before the first read. */
  describe(): KeyDescription
  /** Why the last read of the key failed, while it fails. */
  lastError(): string | undefined
  /** Why the backend cannot serve now even with a fresh key (the audit trail cannot be written); undefined: it can. */
  unavailableReason(): string | undefined
  /** Reads the key's description now (a Decrypt named a version newer than the last read). */
  refresh(): Promise<KeyDescription>
  wrap(plaintext: Buffer, request: KmsRequest): Promise<{ wrappedKey: string; keyVersion: string }>
  unwrap(wrappedKey: string, request: KmsRequest): Promise<Buffer>
  /** Audits a Decrypt refused before it reached the key (an unknown key_id). */
  recordRefused(error: Error, request: KmsRequest): Promise<void>
  close(): Promise<void>
}
