/**
 * `keywrap audit verify FILE`: checks the hash chains of an audit trail (see src/audit/chain.ts) and
 * reports entries missing, edited, out of order or repeated. Reads what the sinks write and what
 * Cloud Logging exports: JSON lines with the audit fields at the top (file sink, stdout) or under
 * `jsonPayload` (a log sink's export, `gcloud logging read --format=json`, which may also be one JSON
 * array). Lines that are not audit entries (request logs, the logging library's diagnostic entry) are
 * skipped. Several chains may be interleaved: one per process, and a new one after a failed write.
 * With --public-key, also the signed checkpoints of each chain (src/audit/checkpoint-verifier.ts).
 */
import { createHash, type KeyObject } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { canonicalJson } from '../audit/canonical-json.js'
import { chainHash, GENESIS_HASH, hashedFields } from '../audit/chain.js'
import { AUDIT_SEVERITY, CHECKPOINT_SEVERITY, type AuditOutcome } from '../audit/audit-entry.js'
import { CHECKPOINT_OPERATION } from '../audit/checkpoint.js'
import { CheckpointVerifier, publicKeysFromPem } from '../audit/checkpoint-verifier.js'
import type { Command } from './command.js'

export interface AuditVerification {
  ok: boolean
  chains: number
  entries: number
  /** Lines that are not audit entries. */
  skipped: number
  /** Checkpoint entries among `entries`. */
  checkpoints: number
  /** Whether checkpoints (signatures, sequence, the ends of chains) were checked: a public key was given. */
  signaturesChecked: boolean
  problems: string[]
}

export interface VerifyOptions {
  /** Check that each chain's entries come in seq order (default true). */
  ordered?: boolean
  /** Check the signed checkpoints with these keys (any of them may have signed one); none: not checked. */
  publicKeys?: readonly KeyObject[]
}

const MAX_PROBLEMS = 1000
const HASH = /^[0-9a-f]{64}$/

interface Link {
  readonly hash: string
  readonly line: number
  /** Tells an identical copy from a forged entry that reuses the seq and hash. */
  readonly content: string
}

interface Unverified extends Link {
  readonly fields: Record<string, unknown>
}

class ChainState {
  readonly links = new Map<number, Link>()
  /** Entries whose predecessor has not been read yet. */
  readonly waiting = new Map<number, Unverified>()
  highest = 0

  constructor(readonly id: string) {}
}

export async function verifyAuditTrail(lines: Iterable<string> | AsyncIterable<string>, options: VerifyOptions = {}): Promise<AuditVerification> {
  const ordered = options.ordered ?? true
  const chains = new Map<string, ChainState>()
  const problems: string[] = []
  let omitted = 0
  let entries = 0
  let checkpoints = 0
  let skipped = 0
  let lineNumber = 0
  const report = (problem: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(problem)
    else omitted++
  }
  const signatures = options.publicKeys && options.publicKeys.length > 0 ? new CheckpointVerifier(options.publicKeys, report) : undefined
  const check = (chain: ChainState, seq: number, entry: Unverified, previous: string) => {
    if (chainHash(previous, entry.fields) !== entry.hash) {
      report(`line ${entry.line}: chain ${chain.id} seq ${seq}: hash mismatch (the entry was edited, or the one before it was)`)
    }
  }

  for await (const text of lines) {
    lineNumber++
    const parsed = auditFields(text)
    if (parsed === undefined) {
      skipped++
      continue
    }
    if ('malformed' in parsed) {
      report(`line ${lineNumber}: malformed audit entry (${parsed.malformed})`)
      continue
    }
    entries++
    const { chainId, seq, hash, fields } = parsed
    const checkpoint = fields.operation === CHECKPOINT_OPERATION
    if (checkpoint) checkpoints++
    // Severity is presentation, outside the hash; it must still say what the outcome says.
    const expectedSeverity = checkpoint ? CHECKPOINT_SEVERITY : AUDIT_SEVERITY[fields.outcome as AuditOutcome]
    if (parsed.severity !== undefined && expectedSeverity !== undefined && parsed.severity !== expectedSeverity) {
      report(
        `line ${lineNumber}: chain ${chainId} seq ${seq}: severity ${parsed.severity} does not match ${checkpoint ? 'a checkpoint' : `outcome ${String(fields.outcome)}`} (edited?)`,
      )
    }
    let chain = chains.get(chainId)
    if (!chain) chains.set(chainId, (chain = new ChainState(chainId)))

    const content = createHash('sha256').update(canonicalJson(fields)).digest('base64')
    const seen = chain.links.get(seq)
    if (seen) {
      const copy = seen.hash === hash && seen.content === content ? 'an identical copy' : 'with different content'
      report(`line ${lineNumber}: chain ${chainId} seq ${seq} appears again, ${copy} (first at line ${seen.line})`)
      continue
    }
    if (ordered && seq < chain.highest) report(`line ${lineNumber}: chain ${chainId} seq ${seq} comes after seq ${chain.highest} (out of order)`)
    chain.highest = Math.max(chain.highest, seq)
    signatures?.observe(chainId, seq, hash, fields, lineNumber)

    const entry: Unverified = { hash, line: lineNumber, content, fields }
    const previous = seq === 1 ? GENESIS_HASH : chain.links.get(seq - 1)?.hash
    if (previous === undefined) chain.waiting.set(seq, entry)
    else check(chain, seq, entry, previous)
    chain.links.set(seq, { hash, line: lineNumber, content })
    const next = chain.waiting.get(seq + 1)
    if (next) {
      chain.waiting.delete(seq + 1)
      check(chain, seq + 1, next, hash)
    }
  }

  for (const chain of chains.values()) {
    for (const [first, last] of missingRanges(chain)) {
      const before = chain.links.get(first - 1)
      const after = chain.links.get(last + 1)
      const where = [before && `after line ${before.line}`, after && `before line ${after.line}`].filter(Boolean).join(', ')
      report(`chain ${chain.id}: ${first === last ? `seq ${first} is` : `seq ${first}-${last} are`} missing (${where})`)
    }
  }
  signatures?.finish((id) => {
    const links = chains.get(id)!.links
    return { id, entryAt: (seq) => links.get(seq) }
  })
  if (omitted > 0) problems.push(`… and ${omitted} more problems`)
  return { ok: problems.length === 0, chains: chains.size, entries, skipped, checkpoints, signaturesChecked: signatures !== undefined, problems }
}

type ParsedLine = { chainId: string; seq: number; hash: string; fields: Record<string, unknown>; severity?: string } | { malformed: string }

/** The audit fields of a line, undefined when the line is not an audit entry. */
export function auditFields(text: string): ParsedLine | undefined {
  if (text.trim() === '') return undefined
  let line: unknown
  try {
    line = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isObject(line)) return undefined
  const exported = isObject(line.jsonPayload)
  const payload = exported ? { ...(line.jsonPayload as Record<string, unknown>) } : line
  if (!('chain' in payload) && !('seq' in payload) && !('hash' in payload)) return undefined

  const { chain, seq, hash } = payload
  if (typeof chain !== 'string' || chain === '') return { malformed: 'no chain id' }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return { malformed: `chain ${chain}: seq ${JSON.stringify(seq)}` }
  if (typeof hash !== 'string' || !HASH.test(hash)) return { malformed: `chain ${chain} seq ${seq}: hash ${JSON.stringify(hash)}` }
  // Log agents (Cloud Run's among them) turn `time` into the LogEntry's timestamp and drop it from the payload.
  if (exported && payload.time === undefined) {
    const time = rfc3339(line.timestamp)
    if (time !== undefined) payload.time = time
  }
  const severity = typeof line.severity === 'string' ? line.severity : undefined
  return { chainId: chain, seq, hash, fields: hashedFields(payload), ...(severity !== undefined && { severity }) }
}

/**
 * The entry's `time` back from a LogEntry timestamp. The library writes milliseconds as float
 * nanoseconds (…326999902 for .327), so round to the millisecond rather than truncate.
 */
function rfc3339(timestamp: unknown): string | undefined {
  let milliseconds: number | undefined
  if (typeof timestamp === 'string') {
    const match = /^(.+T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i.exec(timestamp.trim())
    if (match) milliseconds = Date.parse(`${match[1]}${match[3]}`) + Math.round(Number(`0.${match[2] ?? '0'}`) * 1000)
  } else if (isObject(timestamp)) {
    milliseconds = Number(timestamp.seconds ?? 0) * 1000 + Math.round(Number(timestamp.nanos ?? 0) / 1e6)
  }
  return milliseconds !== undefined && Number.isFinite(milliseconds) ? new Date(milliseconds).toISOString() : undefined
}

function* missingRanges(chain: ChainState): Generator<[number, number]> {
  const present = [...chain.links.keys()].sort((a, b) => a - b)
  let expected = 1
  for (const seq of present) {
    if (seq > expected) yield [expected, seq - 1]
    expected = seq + 1
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export const AUDIT_VERIFY_USAGE = `usage: keywrap audit verify [--unordered] [--public-key PEM_FILE]... FILE

  Checks the hash chains of an audit trail and reports entries missing, edited, out of order or
  repeated. FILE holds JSON lines from the file sink or stdout, or entries exported from Cloud Logging
  (JSON lines with jsonPayload, or the JSON array of gcloud logging read --format=json --order=asc);
  - reads standard input. Other lines are skipped.

  --public-key PEM_FILE   also check the chains' signed checkpoints with this public key (from
                          keywrap audit public-key; repeat it, or put several keys in the file, for a
                          trail signed by more than one): every signature, that checkpoints follow one
                          another, "chain ends without shutdown" (killed, cut, or still running), and
                          "unsealed tail" (entries left without a checkpoint for two intervals)
  --unordered             the input's order means nothing (e.g. gcloud's default newest-first): skip
                          the order check

  Exit status: 0 intact, 1 problems found, 64 wrong arguments, 66 FILE or PEM_FILE cannot be read.`

export const auditVerifyCommand: Command = {
  name: 'audit verify',
  summary: 'check the hash chains (and with --public-key the signed checkpoints) of an audit trail; exit 1 on any gap, edit, reordering or cut end',
  arguments: '[--unordered] [--public-key PEM_FILE] FILE',
  help: AUDIT_VERIFY_USAGE.slice(AUDIT_VERIFY_USAGE.indexOf('\n\n') + 2),
  run: (args) => runAuditVerify(args),
}

export interface VerifyOutput {
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown }
}

/** `keywrap audit verify ARGS…`; resolves with the exit status. */
export async function runAuditVerify(args: string[], output: VerifyOutput = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let file: string
  let ordered: boolean
  let keyFiles: string[]
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { unordered: { type: 'boolean' }, 'public-key': { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
    })
    if (values.help) {
      output.stdout.write(`${AUDIT_VERIFY_USAGE}\n`)
      return 0
    }
    if (positionals.length !== 1) throw new Error(positionals.length === 0 ? 'name the FILE to verify' : 'verify one FILE at a time')
    file = positionals[0]!
    ordered = !values.unordered
    keyFiles = values['public-key'] ?? []
  } catch (error) {
    output.stderr.write(`keywrap audit verify: ${(error as Error).message}\n\n${AUDIT_VERIFY_USAGE}\n`)
    return 64
  }

  const publicKeys: KeyObject[] = []
  for (const keyFile of keyFiles) {
    try {
      publicKeys.push(...publicKeysFromPem(await readFile(keyFile, 'utf8')))
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      output.stderr.write(`keywrap audit verify: --public-key ${keyFile} ${code ? `cannot be read (${code})` : (error as Error).message}\n`)
      return 66
    }
  }

  let result: AuditVerification
  try {
    result = await verifyAuditTrail(await readTrail(file), { ordered, publicKeys })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    output.stderr.write(`keywrap audit verify: cannot read ${file} (${code ?? (error as Error).message})\n`)
    return 66
  }
  for (const problem of result.problems) output.stdout.write(`${problem}\n`)
  const counts =
    `${result.chains} ${result.chains === 1 ? 'chain' : 'chains'}, ${result.entries} ${result.entries === 1 ? 'entry' : 'entries'}` +
    (result.signaturesChecked ? ` (${result.checkpoints} signed checkpoints checked)` : '') +
    `, ${result.skipped} other lines skipped`
  output.stdout.write(result.ok ? `${file}: intact (${counts})\n` : `${file}: ${result.problems.length} problems (${counts})\n`)
  if (!result.signaturesChecked && result.checkpoints > 0) {
    output.stdout.write(`checkpoint signatures not checked (${result.checkpoints} checkpoints): give --public-key to check them and the ends of the chains\n`)
  }
  return result.ok ? 0 : 1
}

/** The trail's lines (FILE, or standard input for "-"); a JSON array (gcloud's export) becomes one line per element. */
export async function readTrail(file: string): Promise<Iterable<string> | AsyncIterable<string>> {
  if (file === '-') {
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return splitTrail(Buffer.concat(chunks).toString('utf8'))
  }
  if ((await firstCharacter(file)) === '[') {
    const handle = await open(file, 'r')
    try {
      return splitTrail(await handle.readFile('utf8'))
    } finally {
      await handle.close()
    }
  }
  const stream = createReadStream(file, 'utf8')
  await new Promise<void>((resolve, reject) => stream.once('open', () => resolve()).once('error', reject))
  return createInterface({ input: stream, crlfDelay: Infinity })
}

function splitTrail(text: string): string[] {
  if (text.trimStart().startsWith('[')) {
    const parsed: unknown = JSON.parse(text)
    if (Array.isArray(parsed)) return parsed.map((item) => JSON.stringify(item))
  }
  return text.split('\n')
}

async function firstCharacter(file: string): Promise<string | undefined> {
  const handle = await open(file, 'r')
  try {
    const buffer = Buffer.alloc(4096)
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0)
    return buffer.subarray(0, bytesRead).toString('utf8').trimStart()[0]
  } finally {
    await handle.close()
  }
}
