/**
 * The rewrap campaign of issue 20: wrapped keys of a Cloud KMS alias (the stand-in at 50 ms a call,
 * the DEK cache off, so each rewrap is a Decrypt and an Encrypt) rewrapped by `keywrap rewrap`
 * (compiled, as the image runs it) through one keywrap. Timed against the floor the configured limits
 * imply; once with --rate; once killed twice and resumed, its output checked line by line; and the
 * CLI's peak RSS for a small and a large input (memory must not grow with the input).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEFAULT_CHUNK, DEFAULT_CONCURRENCY } from '../src/cli/rewrap.js'
import { DEFAULTS } from '../src/config/load-config.js'
import { BATCH_PARALLELISM } from '../src/keys/key-service.js'
import type { KmsStandIn } from '../test/support/kms-stand-in.js'
import { post } from './load.js'
import { kmsClientAlone, ROOT, type BenchProcess } from './processes.js'

const KMS_LATENCY_MS = 50
/** The CLI as a user runs it: its default requests in flight and chunk size. */
const CONCURRENCY = DEFAULT_CONCURRENCY
const CHUNK = DEFAULT_CHUNK
/** The keywrap of the campaign runs with the default provider-call limits (src/keys/provider-gate.ts). */
const PROVIDER_MAX_CONCURRENT = DEFAULTS.KEYWRAP_PROVIDER_MAX_CONCURRENT
const PROVIDER_MAX_QUEUED = DEFAULTS.KEYWRAP_PROVIDER_MAX_QUEUED

/**
 * What the configured limits allow. An item is two provider calls one after the other (a Decrypt,
 * then an Encrypt), each holding a call slot for the stand-in's latency. Items in flight: the service
 * runs up to BATCH_PARALLELISM of a request at once, the CLI keeps `concurrency` requests in flight;
 * provider calls at once: at most PROVIDER_MAX_CONCURRENT, whatever the items in flight. The smaller
 * of the two binds.
 */
export function campaignFloor(keys: number, concurrency: number, chunk: number): { callSlots: number; binding: string; seconds: number } {
  const itemsInFlight = Math.min(BATCH_PARALLELISM, chunk) * concurrency
  const callSlots = Math.min(itemsInFlight, PROVIDER_MAX_CONCURRENT)
  const cli = `the CLI's ${concurrency} requests (--concurrency) × ${Math.min(BATCH_PARALLELISM, chunk)} items the service runs of each = ${itemsInFlight} items in flight`
  const gate = `the service's ${PROVIDER_MAX_CONCURRENT} provider calls at once (KEYWRAP_PROVIDER_MAX_CONCURRENT)`
  const binding =
    itemsInFlight < PROVIDER_MAX_CONCURRENT
      ? `${cli}, fewer than ${gate}`
      : `${gate}; ${cli}, ${itemsInFlight - PROVIDER_MAX_CONCURRENT} of them queued (KEYWRAP_PROVIDER_MAX_QUEUED ${PROVIDER_MAX_QUEUED})`
  return { callSlots, binding: `${binding}; 2 calls × ${KMS_LATENCY_MS} ms a rewrap`, seconds: (keys * 2 * KMS_LATENCY_MS) / 1000 / callSlots }
}

export interface CampaignContext {
  readonly home: string
  readonly token: string
  readonly kms: KmsStandIn
  readonly kmsKey: string
  /** host:port of the stand-in. */
  readonly kmsAddress: string
  /** The alias of kmsKey in the keywrap that `withKeywrap` starts. */
  readonly alias: string
  readonly quick: boolean
  readonly facts: Record<string, number | string>
  withKeywrap(env: Record<string, string>, body: (keywrap: BenchProcess) => Promise<void>): Promise<unknown>
}

interface CliRun {
  readonly code: number | null
  readonly seconds: number
  readonly peakRssMiB: number
  readonly stderr: string
}

export async function rewrapCampaign(context: CampaignContext): Promise<void> {
  const { facts, kms, quick } = context
  const keys = quick ? 5000 : 100_000
  const input = join(context.home, 'campaign-in.jsonl')
  await context.withKeywrap({ KEYWRAP_CACHE_MAX_ENTRIES: '0', KEYWRAP_KEY_REFRESH_SECONDS: '1' }, async (keywrap) => {
    kms.clearFaults()
    const generated = await generateKeys(keywrap, context, keys)
    await writeLines(
      input,
      generated.map((answer, id) => JSON.stringify({ id, wrappedKey: answer.wrappedKey })),
    )
    const version = kms.rotate(context.kmsKey)
    await sleep(1500)
    const run = (out: string, extra: string[] = [], killAfterBytes?: number, file = input) =>
      runCampaign(keywrap, context, ['--in', file, '--out', out, ...extra], killAfterBytes)
    const inputBytes = (await stat(input)).size

    kms.setFaults({ latencyMs: KMS_LATENCY_MS })
    const floor = campaignFloor(keys, CONCURRENCY, CHUNK)
    facts.campaignKeys = keys
    facts.campaignCli = `--concurrency ${CONCURRENCY} --chunk ${CHUNK} (the defaults)`
    facts.campaignBindingLimit = floor.binding
    facts.campaignFloorSeconds = round(floor.seconds)
    const free = await measured(keywrap, context, floor.callSlots, () => run(join(context.home, 'campaign-out.jsonl')))
    await assertComplete(join(context.home, 'campaign-out.jsonl'), keys, version, free)
    facts.campaignSeconds = round(free.seconds)
    facts.campaignTimesFloor = round(free.seconds / floor.seconds)
    facts.campaignCliPeakRssMiB = free.peakRssMiB
    facts.campaignServer = free.server
    // Side by side: the KMS client alone doing the same provider work under the same call limit.
    const aloneItems = quick ? 2000 : 20_000
    const aloneSeconds = Number(await kmsClientAlone(context.kmsAddress, context.kmsKey, 'rewrap', aloneItems, floor.callSlots))
    const aloneTimesFloor = aloneSeconds / campaignFloor(aloneItems, CONCURRENCY, CHUNK).seconds
    facts.campaignClientAlone = `${aloneItems} rewraps (a Decrypt, then an Encrypt) in ${round(aloneSeconds)} s, ${floor.callSlots} calls at once`
    facts.campaignClientAloneTimesFloor = round(aloneTimesFloor)
    facts.campaignTimesClientAlone = round(free.seconds / floor.seconds / aloneTimesFloor)

    // Half the rate the limits allow (640 keys a second at the defaults), so that the rate binds and
    // not the call slots: at 1,000 a second, calls of the ~70 ms they take here left 128 slots room
    // for ~910, and the rated run measured the slots again.
    const rate = Math.round(keys / floor.seconds / 2)
    const rated = await measured(keywrap, context, floor.callSlots, () => run(join(context.home, 'campaign-rated.jsonl'), ['--rate', String(rate)]))
    await assertComplete(join(context.home, 'campaign-rated.jsonl'), keys, version, rated)
    facts.campaignRate = rate
    facts.campaignRateFloorSeconds = round(keys / rate)
    facts.campaignRatedSeconds = round(rated.seconds)
    facts.campaignRatedTimesFloor = round(rated.seconds / (keys / rate))
    facts.campaignRatedServer = rated.server

    const resumed = join(context.home, 'campaign-resumed.jsonl')
    // Output lines are a little longer than input lines: killed before 30 % and 60 % of the lines.
    const first = await run(resumed, [], Math.round(inputBytes * 0.3))
    const killedAt = [await linesAfterKill(first, resumed)]
    const second = await run(resumed, ['--resume'], Math.round(inputBytes * 0.6))
    killedAt.push(await linesAfterKill(second, resumed))
    const last = await run(resumed, ['--resume'])
    await assertComplete(resumed, keys, version, last)
    facts.campaignKilledAtLines = killedAt.join(', ')
    facts.campaignResumedOutput = `${keys} lines, ids 0…${keys - 1} in order, each once, all rewrapped under version ${version}`
    kms.clearFaults()
    facts.campaignSameDeks = await sameDeks(keywrap, context, input, resumed)

    // Peak RSS of the CLI: a campaign over a tenth of the input beside the whole one, and --dry-run
    // (the reader alone) over the input and ten times it.
    const tenth = join(context.home, 'campaign-tenth.jsonl')
    await writeFile(
      tenth,
      (await readFile(input, 'utf8'))
        .split('\n')
        .slice(0, keys / 10)
        .join('\n') + '\n',
    )
    kms.setFaults({ latencyMs: KMS_LATENCY_MS })
    const small = await run(join(context.home, 'campaign-tenth-out.jsonl'), [], undefined, tenth)
    kms.clearFaults()
    facts[`campaignCliPeakRssMiB${keys / 10}Lines`] = small.peakRssMiB
    const tenfold = join(context.home, 'campaign-tenfold.jsonl')
    await writeLines(
      tenfold,
      (function* () {
        const lines = generated.map((answer, id) => JSON.stringify({ id, wrappedKey: answer.wrappedKey }))
        for (let copy = 0; copy < 10; copy++) yield* lines
      })(),
    )
    const dryRuns = [input, tenfold].map((file) => runCli(keywrap, context, ['--in', file, '--dry-run']))
    const [dryInput, dryTenfold] = [await dryRuns[0]!, await dryRuns[1]!]
    facts[`dryRunPeakRssMiB${keys}Lines`] = dryInput.peakRssMiB
    facts[`dryRunPeakRssMiB${keys * 10}Lines`] = dryTenfold.peakRssMiB
    facts.dryRunTenfoldSeconds = round(dryTenfold.seconds)
    facts.campaignInputMiB = round((await stat(input)).size / 1048576)
  })
}

/** `count` wrapped keys, 50 requests at a time; a 503 (the stand-in starved on a busy machine) is tried again. */
async function generateKeys(keywrap: BenchProcess, context: CampaignContext, count: number): Promise<{ wrappedKey: string }[]> {
  const keys = new Array<{ wrappedKey: string }>(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const index = next++
      for (let attempt = 1; ; attempt++) {
        try {
          keys[index] = await post(keywrap, `/v1/keys/${context.alias}:generateDataKey`, context.token, { includePlaintext: false })
          break
        } catch (error) {
          if (attempt >= 5 || !/: 503 /.test((error as Error).message)) throw error
          await sleep(1000)
        }
      }
    }
  }
  await Promise.all(Array.from({ length: 50 }, worker))
  return keys
}

/**
 * A campaign run with what the service did meanwhile: its CPU time, the provider calls' mean latency
 * as it saw them and how busy its call slots were (call time over slots × wall time; the floor
 * assumes 100 % at 50 ms a call), and the machine's load average (1 min) before and after.
 */
async function measured(keywrap: BenchProcess, context: CampaignContext, callSlots: number, body: () => Promise<CliRun>): Promise<CliRun & { server: string }> {
  const [cpuBefore, callsBefore, loadBefore] = [await keywrap.cpuSeconds(), await providerCalls(keywrap, context.token), loadavg()[0]!]
  const result = await body()
  const [cpuAfter, callsAfter, loadAfter] = [await keywrap.cpuSeconds(), await providerCalls(keywrap, context.token), loadavg()[0]!]
  const calls = callsAfter.count - callsBefore.count
  const callSeconds = callsAfter.seconds - callsBefore.seconds
  const server =
    `${round(cpuAfter - cpuBefore)} s of keywrap CPU; ${calls} provider calls of ${round((callSeconds / calls) * 1000)} ms on average, ` +
    `call slots ${Math.round((callSeconds / (callSlots * result.seconds)) * 100)} % busy; load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after`
  return { ...result, server }
}

/** Encrypt and Decrypt calls so far and their summed latency, from keywrap's /metrics. */
async function providerCalls(keywrap: BenchProcess, token: string): Promise<{ count: number; seconds: number }> {
  const response = await fetch(`${keywrap.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  if (!response.ok) throw new Error(`/metrics: ${response.status}`)
  const text = await response.text()
  const total = (suffix: string) =>
    [...text.matchAll(new RegExp(`^keywrap_provider_call_seconds_${suffix}\\{[^}]*method="(?:Encrypt|Decrypt)"[^}]*\\} (\\S+)$`, 'gm'))].reduce(
      (sum, match) => sum + Number(match[1]),
      0,
    )
  return { count: total('count'), seconds: total('sum') }
}

/** A campaign run; with `killAfterBytes`, SIGKILLed once its output has that many bytes. */
function runCampaign(keywrap: BenchProcess, context: CampaignContext, args: string[], killAfterBytes?: number): Promise<CliRun> {
  const out = args[args.indexOf('--out') + 1]!
  const kill = killAfterBytes === undefined ? undefined : { file: out, bytes: killAfterBytes }
  return runCli(keywrap, context, [...args, '--concurrency', String(CONCURRENCY), '--chunk', String(CHUNK), '--progress-every', '10'], kill)
}

/** `node dist/src/cli/main.js rewrap …`, timed, its peak RSS read from /proc while it runs; SIGKILLed once `kill.file` has `kill.bytes`. */
async function runCli(keywrap: BenchProcess, context: CampaignContext, args: string[], kill?: { file: string; bytes: number }): Promise<CliRun> {
  const started = performance.now()
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'rewrap', '--url', keywrap.url, '--alias', context.alias, ...args], {
    cwd: ROOT,
    env: { ...process.env, KEYWRAP_TOKEN: context.token },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = once(child, 'exit')
  let peak = 0
  let done = false
  void exited.then(() => (done = true))
  while (!done) {
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '')
    peak = Math.max(peak, Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0))
    if (kill && ((await stat(kill.file).catch(() => undefined))?.size ?? 0) >= kill.bytes) child.kill('SIGKILL')
    await sleep(kill ? 20 : 100)
  }
  const [code] = (await exited) as [number | null]
  return { code, seconds: (performance.now() - started) / 1000, peakRssMiB: round(peak / 1024), stderr }
}

async function countLines(file: string): Promise<number> {
  const text = await readFile(file, 'utf8').catch(() => '')
  let lines = 0
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines++
  return lines
}

/** The lines a killed run left (a partial last line is not counted: --resume cuts it off). */
async function linesAfterKill(run: CliRun, file: string): Promise<number> {
  if (run.code !== null) throw new Error(`the run meant to be killed ended by itself (${run.code}): ${run.stderr}`)
  return countLines(file)
}

/** Unwraps a sample of input keys and of their rewrapped output keys: the same DEKs. */
async function sameDeks(keywrap: BenchProcess, context: CampaignContext, input: string, output: string): Promise<string> {
  const sample = async (file: string) =>
    (await readFile(file, 'utf8'))
      .trimEnd()
      .split('\n')
      .filter((_, index) => index % 100 === 0)
      .slice(0, 1000)
  const [before, after] = [await sample(input), await sample(output)]
  const unwrap = async (lines: string[]) =>
    (await post(keywrap, `/v1/keys/${context.alias}:batchUnwrap`, context.token, { items: lines.map((line) => ({ wrappedKey: JSON.parse(line).wrappedKey })) }))
      .results
  const [plain, rewrapped] = [await unwrap(before), await unwrap(after)]
  const same = plain.filter((result: any, index: number) => result.plaintext !== undefined && result.plaintext === rewrapped[index]?.plaintext).length
  if (same !== plain.length) throw new Error(`only ${same} of ${plain.length} sampled rewrapped keys unwrap to their original DEK`)
  return `${same} of ${plain.length} sampled (every 100th line) unwrap to the DEK of their input line`
}

/** Every input line once, in order, rewrapped under `version`, with no error. */
async function assertComplete(file: string, keys: number, version: number, run: CliRun): Promise<void> {
  if (run.code !== 0) throw new Error(`keywrap rewrap exited ${run.code}: ${run.stderr}`)
  const lines = (await readFile(file, 'utf8')).split('\n')
  if (lines.pop() !== '' || lines.length !== keys) throw new Error(`${file}: ${lines.length} lines for ${keys} keys`)
  lines.forEach((text, id) => {
    const line = JSON.parse(text)
    if (line.id !== id || line.rewrapped !== true || !line.wrappedKey.startsWith(`kw1.${version}.`) || line.error)
      throw new Error(`${file} line ${id + 1}: ${text}`)
  })
}

async function writeLines(file: string, lines: Iterable<string>): Promise<void> {
  const stream = createWriteStream(file)
  for (const line of lines) if (!stream.write(`${line}\n`)) await once(stream, 'drain')
  stream.end()
  await once(stream, 'finish')
}

function round(value: number): number {
  return Math.round(value * 100) / 100
}
