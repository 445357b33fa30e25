/**
 * The checkpoint half of `keywrap audit verify --public-key`: every checkpoint's signature, that each
 * chain's checkpoints follow one another and seal entries that are there, and what the end of each
 * chain says (checkpoint.ts):
 *
 * - `chain ends without shutdown`: its last checkpoint is not a shutdown checkpoint. The process was
 *   killed, or the end of the chain (the shutdown checkpoint with it) was cut, or it is still running.
 * - `unsealed tail`: entries after a chain's last checkpoint, older than two of its intervals at the
 *   trail's latest time. A live writer would have sealed them by then.
 * - `sealed late`: entries sealed by a checkpoint more than two intervals after they were written
 *   (checkpoints could not be signed meanwhile, e.g. Cloud KMS was unreachable).
 *
 * The reference time is the latest `time` in the trail (not the clock), so the same file always gives
 * the same findings.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto'
import { GENESIS_HASH } from './chain.js'
import { CHECKPOINT_ALGORITHMS, CHECKPOINT_EVENTS, CHECKPOINT_OPERATION, signedBytes, type Checkpoint, type CheckpointAlgorithm } from './checkpoint.js'

const HASH = /^[0-9a-f]{64}$/

export interface ChainLinks {
  readonly id: string
  /** The entry at `seq`, if it was read. */
  entryAt(seq: number): { readonly hash: string; readonly line: number } | undefined
}

interface ReadCheckpoint {
  readonly seq: number
  readonly hash: string
  readonly line: number
  readonly checkpoint: Checkpoint
}

interface ChainRecord {
  readonly checkpoints: ReadCheckpoint[]
  /** Times of the key-access entries (not checkpoints), by seq. */
  readonly accessTimes: Map<number, number>
  highest: number
}

/** Public keys from PEM text (one or more `-----BEGIN PUBLIC KEY-----` blocks). */
export function publicKeysFromPem(text: string): KeyObject[] {
  const blocks = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? []
  if (blocks.length === 0) throw new Error('holds no PEM public key (-----BEGIN PUBLIC KEY-----)')
  return blocks.map((block) => {
    const key = createPublicKey(block)
    if (algorithmOf(key) === undefined) throw new Error(`holds a ${key.asymmetricKeyType} key; checkpoints are signed with Ed25519 or ECDSA P-256`)
    return key
  })
}

function algorithmOf(key: KeyObject): CheckpointAlgorithm | undefined {
  if (key.asymmetricKeyType === 'ed25519') return 'ED25519'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'EC_SIGN_P256_SHA256'
  return undefined
}

export class CheckpointVerifier {
  private readonly chains = new Map<string, ChainRecord>()
  private latest = Number.NEGATIVE_INFINITY

  constructor(
    private readonly publicKeys: readonly KeyObject[],
    private readonly report: (problem: string) => void,
  ) {}

  /** One entry of the trail, in the order read. */
  observe(chainId: string, seq: number, hash: string, fields: Record<string, unknown>, line: number): void {
    const chain = this.chainOf(chainId)
    chain.highest = Math.max(chain.highest, seq)
    const time = typeof fields.time === 'string' ? Date.parse(fields.time) : Number.NaN
    if (Number.isFinite(time)) this.latest = Math.max(this.latest, time)
    if (fields.operation !== CHECKPOINT_OPERATION) {
      if (Number.isFinite(time)) chain.accessTimes.set(seq, time)
      return
    }
    const where = `line ${line}: chain ${chainId} seq ${seq}`
    const checkpoint = fields.checkpoint
    const malformed = malformedField(checkpoint)
    if (malformed !== undefined) return this.report(`${where}: malformed checkpoint (${malformed})`)
    const valid = checkpoint as Checkpoint
    if (valid.time !== fields.time) this.report(`${where}: the checkpoint's time ${valid.time} is not its entry's ${String(fields.time)} (edited?)`)
    if (!this.signatureHolds(valid)) {
      this.report(`${where}: bad signature: the checkpoint does not verify with the public key given (${valid.algorithm}, key ${valid.key})`)
    }
    chain.checkpoints.push({ seq, hash, line, checkpoint: valid })
  }

  /** The findings that need the whole trail, for each chain read. */
  finish(links: (chainId: string) => ChainLinks): void {
    for (const [id, chain] of this.chains) this.finishChain(links(id), chain)
  }

  private finishChain(links: ChainLinks, chain: ChainRecord): void {
    const checkpoints = chain.checkpoints.sort((a, b) => a.seq - b.seq)
    if (checkpoints.length === 0) {
      this.report(`chain ${links.id}: chain ends without shutdown: it has no checkpoint at all (written without checkpoints, or they were removed)`)
      return
    }
    let previous: ReadCheckpoint | undefined
    for (const current of checkpoints) {
      if (this.checkSequence(links, previous, current)) this.checkSealedInTime(links.id, chain, previous?.checkpoint.lastSeq ?? 0, current)
      previous = current
    }
    const last = previous!
    if (last.checkpoint.event !== 'shutdown') {
      const after = chain.highest - last.seq
      this.report(
        `chain ${links.id}: chain ends without shutdown: its last checkpoint (line ${last.line}, seq ${last.seq}, ${last.checkpoint.time}) is a${last.checkpoint.event === 'interval' ? 'n' : ''} ${last.checkpoint.event} checkpoint, with ${after} ${after === 1 ? 'entry' : 'entries'} after it`,
      )
    } else if (chain.highest > last.seq) {
      this.report(`chain ${links.id}: seq ${last.seq + 1}-${chain.highest} come after the shutdown checkpoint (line ${last.line})`)
    }
    this.checkUnsealedTail(links.id, chain, last)
  }

  /** False when the checkpoint's lastSeq is out of place (nothing more can be said of what it seals). */
  private checkSequence(links: ChainLinks, previous: ReadCheckpoint | undefined, current: ReadCheckpoint): boolean {
    const { checkpoint, seq, line } = current
    const where = `line ${line}: chain ${links.id} seq ${seq}: checkpoint`
    if (checkpoint.chain !== links.id) this.report(`${where} names chain ${checkpoint.chain}`)
    const expectedPrevious = previous?.hash ?? GENESIS_HASH
    if (checkpoint.previousCheckpoint !== expectedPrevious) {
      const before = previous ? `the checkpoint before it (seq ${previous.seq}, line ${previous.line})` : 'no checkpoint before it in the chain'
      this.report(
        `${where} does not follow the one before it: it names previous checkpoint ${checkpoint.previousCheckpoint.slice(0, 12)}…, but there is ${before}`,
      )
    }
    if (previous === undefined && checkpoint.event === 'interval')
      this.report(`${where} is an interval checkpoint, but the chain's first: the ones before it are missing`)
    if (previous !== undefined && checkpoint.event === 'start') this.report(`${where} is a second start checkpoint (the first at line ${previous.line})`)
    if (previous?.checkpoint.event === 'shutdown') this.report(`${where} comes after the shutdown checkpoint (line ${previous.line})`)
    if (previous !== undefined && Date.parse(checkpoint.time) < Date.parse(previous.checkpoint.time)) {
      this.report(`${where} is dated ${checkpoint.time}, before the checkpoint before it (${previous.checkpoint.time})`)
    }
    const floor = previous?.seq ?? 0
    if (checkpoint.lastSeq >= seq || checkpoint.lastSeq < floor) {
      this.report(`${where} seals seq ${checkpoint.lastSeq}, which does not lie between the previous checkpoint (seq ${floor}) and itself`)
      return false
    }
    const sealed = checkpoint.lastSeq === 0 ? { hash: GENESIS_HASH } : links.entryAt(checkpoint.lastSeq)
    // A missing entry is reported as a gap already.
    if (sealed !== undefined && sealed.hash !== checkpoint.lastHash) {
      this.report(
        `${where} seals seq ${checkpoint.lastSeq} with hash ${checkpoint.lastHash.slice(0, 12)}…, but the entry there has ${sealed.hash.slice(0, 12)}…`,
      )
    }
    return true
  }

  /** Key accesses in (from, current.lastSeq] written more than two intervals before the checkpoint that seals them. */
  private checkSealedInTime(chainId: string, chain: ChainRecord, from: number, current: ReadCheckpoint): void {
    const { checkpoint } = current
    const limitMs = 2 * checkpoint.intervalSeconds * 1000
    const sealedAt = Date.parse(checkpoint.time)
    const late = this.accessesIn(chain, from + 1, checkpoint.lastSeq).filter(([, time]) => sealedAt - time > limitMs)
    if (late.length === 0) return
    const first = late[0]!
    this.report(
      `chain ${chainId}: sealed late: ${describeSeqs(late.map(([seq]) => seq))} waited ${seconds(sealedAt - first[1])} s for the checkpoint at line ${current.line} (more than two intervals of ${checkpoint.intervalSeconds} s: checkpoints were not written meanwhile)`,
    )
  }

  private checkUnsealedTail(chainId: string, chain: ChainRecord, last: ReadCheckpoint): void {
    const limitMs = 2 * last.checkpoint.intervalSeconds * 1000
    const unsealed = this.accessesIn(chain, last.checkpoint.lastSeq + 1, chain.highest).filter(([, time]) => this.latest - time > limitMs)
    if (unsealed.length === 0) return
    this.report(
      `chain ${chainId}: unsealed tail: ${describeSeqs(unsealed.map(([seq]) => seq))} from ${new Date(unsealed[0]![1]).toISOString()} on, with no checkpoint after them, and the trail goes on to ${new Date(this.latest).toISOString()} (more than two intervals of ${last.checkpoint.intervalSeconds} s)`,
    )
  }

  /** [seq, time] of the key accesses with seq in [from, to], in seq order. */
  private accessesIn(chain: ChainRecord, from: number, to: number): [number, number][] {
    // A forged seq may be huge: walk the range only when it is no longer than the entries read.
    if (to - from > chain.accessTimes.size) {
      return [...chain.accessTimes].filter(([seq]) => seq >= from && seq <= to).sort((a, b) => a[0] - b[0])
    }
    const found: [number, number][] = []
    for (let seq = from; seq <= to; seq++) {
      const time = chain.accessTimes.get(seq)
      if (time !== undefined) found.push([seq, time])
    }
    return found
  }

  private signatureHolds(checkpoint: Checkpoint): boolean {
    const data = signedBytes(checkpoint)
    const signature = Buffer.from(checkpoint.signature, 'base64')
    return this.publicKeys.some((key) => {
      if (algorithmOf(key) !== checkpoint.algorithm) return false
      try {
        return verify(checkpoint.algorithm === 'ED25519' ? null : 'sha256', data, key, signature)
      } catch {
        return false
      }
    })
  }

  private chainOf(id: string): ChainRecord {
    let chain = this.chains.get(id)
    if (!chain) this.chains.set(id, (chain = { checkpoints: [], accessTimes: new Map(), highest: 0 }))
    return chain
  }
}

/** The first field of a checkpoint that is missing or of the wrong kind; undefined when it is well formed. */
function malformedField(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'no checkpoint object'
  const checkpoint = value as Record<string, unknown>
  for (const name of ['chain', 'time', 'key', 'signature']) {
    const value = checkpoint[name]
    if (typeof value !== 'string' || value === '') return name
  }
  if (!Number.isFinite(Date.parse(checkpoint.time as string))) return 'time'
  if (!Number.isSafeInteger(checkpoint.lastSeq) || (checkpoint.lastSeq as number) < 0) return 'lastSeq'
  for (const name of ['lastHash', 'previousCheckpoint']) {
    const value = checkpoint[name]
    if (typeof value !== 'string' || !HASH.test(value)) return name
  }
  if (!(CHECKPOINT_EVENTS as readonly unknown[]).includes(checkpoint.event)) return 'event'
  if (!Number.isSafeInteger(checkpoint.intervalSeconds) || (checkpoint.intervalSeconds as number) < 1) return 'intervalSeconds'
  if (!(CHECKPOINT_ALGORITHMS as readonly unknown[]).includes(checkpoint.algorithm)) return 'algorithm'
  return undefined
}

function describeSeqs(seqs: readonly number[]): string {
  const first = seqs[0]!
  const last = seqs[seqs.length - 1]!
  return seqs.length === 1 ? `1 entry (seq ${first})` : `${seqs.length} entries (seq ${first}-${last})`
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1)
}
