/**
 * Signed checkpoints of the audit trail. A chain's hash links show an entry edited, deleted or moved
 * inside it, but not its last entries cut, nor the chain gone whole. So, while entries are written,
 * every KEYWRAP_AUDIT_CHECKPOINT_SECONDS, at start and at shutdown, each chain gets a checkpoint entry
 * that says, signed, "chain C had reached seq N with hash H at time T", naming the checkpoint before
 * it. A cut tail then loses the shutdown checkpoint (and whoever cut it cannot sign a new one), and
 * entries left after the last checkpoint for longer than two intervals show that the chain stopped
 * being sealed (`keywrap audit verify --public-key`; docs/audit.md).
 *
 * The checkpoint is an entry of its chain like any other (its own seq and hash), so that the chain's
 * hash covers it too; its operation `audit.checkpoint` tells it apart from key accesses.
 */
import { canonicalJson } from './canonical-json.js'

export const CHECKPOINT_OPERATION = 'audit.checkpoint'

/** `start`: the chain's first; `interval`: entries were written since the last one; `shutdown`: the chain's last. */
export type CheckpointEvent = 'start' | 'interval' | 'shutdown'

export const CHECKPOINT_EVENTS: readonly CheckpointEvent[] = ['start', 'interval', 'shutdown']

/** Ed25519 (the embedded default's key in KEYWRAP_HOME) or ECDSA P-256 over SHA-256 (a Cloud KMS key version). */
export type CheckpointAlgorithm = 'ED25519' | 'EC_SIGN_P256_SHA256'

export const CHECKPOINT_ALGORITHMS: readonly CheckpointAlgorithm[] = ['ED25519', 'EC_SIGN_P256_SHA256']

/** What a checkpoint states; the signature covers canonicalJson() of exactly these fields. */
export interface CheckpointStatement {
  readonly chain: string
  /** Seq of the last entry of the chain written when the checkpoint was taken (0: none yet). */
  readonly lastSeq: number
  /** That entry's hash (GENESIS_HASH when lastSeq is 0). */
  readonly lastHash: string
  readonly time: string
  /** Hash (the chain's `hash` field) of the chain's previous checkpoint entry; GENESIS_HASH for its first. */
  readonly previousCheckpoint: string
  readonly event: CheckpointEvent
  /** KEYWRAP_AUDIT_CHECKPOINT_SECONDS of the writer: how soon the next checkpoint was due. */
  readonly intervalSeconds: number
  readonly algorithm: CheckpointAlgorithm
  /** The signing key: a Cloud KMS key version's name, or `ed25519:` and the SHA-256 of the public key (SPKI DER, hex). */
  readonly key: string
}

export interface Checkpoint extends CheckpointStatement {
  /** base64: Ed25519, or ECDSA P-256 DER as Cloud KMS's AsymmetricSign returns it. */
  readonly signature: string
}

/** The audit entry that carries a checkpoint. */
export interface CheckpointEntry {
  readonly time: string
  readonly operation: typeof CHECKPOINT_OPERATION
  readonly checkpoint: Checkpoint
}

/** The bytes a checkpoint's signature covers. */
export function signedBytes(statement: CheckpointStatement): Buffer {
  const { chain, lastSeq, lastHash, time, previousCheckpoint, event, intervalSeconds, algorithm, key } = statement
  return Buffer.from(canonicalJson({ algorithm, chain, event, intervalSeconds, key, lastHash, lastSeq, previousCheckpoint, time }), 'utf8')
}

/** The checkpoint entry's record, in canonical (sorted) order like toAuditRecord(). */
export function checkpointRecord(entry: CheckpointEntry): Record<string, unknown> {
  const { chain, lastSeq, lastHash, time, previousCheckpoint, event, intervalSeconds, algorithm, key, signature } = entry.checkpoint
  return {
    checkpoint: { algorithm, chain, event, intervalSeconds, key, lastHash, lastSeq, previousCheckpoint, signature, time },
    operation: entry.operation,
    time: entry.time,
  }
}

export function isCheckpointEntry(entry: object): entry is CheckpointEntry {
  return (entry as { operation?: unknown }).operation === CHECKPOINT_OPERATION
}
