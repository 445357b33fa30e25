/**
 * `npm run bench [-- --quick] [-- --only rewrap-campaign]`: drives the real service (compiled, started as production starts it)
 * over real sockets with autocannon, beside a bare-Fastify baseline measured in the same run. These
 * machines are shared, so every figure is also given as a ratio to the baseline of this run.
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { loadDevIssuer, mintDevToken } from '../src/auth/dev-issuer.js'
import { KeyringFile } from '../src/providers/local/keyring-file.js'
import { KmsStandIn } from '../test/support/kms-stand-in.js'
import { LoggingStandIn } from '../test/support/logging-stand-in.js'
import { redisUrlForTests } from '../test/support/redis-server.js'
import { clientFacts } from './client.js'
import { load, loadAlternating, median, post, postMany, ratio, withoutToken, zipfSampler, type LoadRequest, type Row } from './load.js'
import { timerStalls } from './machine-noise.js'
import { kmsPluginScenarios } from './kms-plugin.js'
import { latencyBesideBaseline, openLoop, type LatencyRow, type OpenLoopResult } from './open-loop.js'
import { startBareForColdStart, startBaseline, startKeywrap, type BenchProcess } from './processes.js'
import { rewrapCampaign } from './rewrap-campaign.js'
import { RESULTS_FOLDER, resultFileStem } from './result-files.js'

if (process.argv.includes('--help')) {
  process.stdout.write(
    'usage: npm run bench [-- --quick] [-- --only rewrap-campaign]\n\n' +
      '  (no option)  the full run (several minutes); writes it to\n' +
      `               ${RESULTS_FOLDER}/YYYY-MM-DD-nodeN.json and .md (-2, -3… when that day's name is taken)\n` +
      '  --quick      a short run (under a minute) that writes nothing\n' +
      '  --only SECTION  one section alone:\n' +
      '               client: the client package (writes nothing)\n' +
      `               rewrap-campaign: the 100,000-key rewrap campaign; writes ${RESULTS_FOLDER}/YYYY-MM-DD-nodeN-rewrap-campaign.md\n` +
      '               kms-plugin: the Kubernetes KMS plugin beside a bare gRPC server; writes …-kms-plugin.md\n' +
      '               overload: three times the capacity of a provider-bound instance; writes …-overload.md\n',
  )
  process.exit(0)
}

const quick = process.argv.includes('--quick')
/** `--only SECTION` or `--only=SECTION`: that section alone (see --help). */
const only = onlySection(process.argv)
const SECTIONS = ['client', 'rewrap-campaign', 'kms-plugin', 'overload']
if (only !== undefined && !SECTIONS.includes(only)) throw new Error(`--only ${only}: the sections that run alone are ${SECTIONS.join(', ')}`)
/** The client package's section alone: no results file is written. */
const clientOnly = only === 'client'
/** The rewrap campaign alone: its facts printed and (without --quick) written to bench/results/. */
const onlyCampaign = only === 'rewrap-campaign'

function onlySection(argv: string[]): string | undefined {
  const index = argv.findIndex((arg) => arg === '--only' || arg.startsWith('--only='))
  if (index === -1) return undefined
  return argv[index]!.startsWith('--only=') ? argv[index]!.slice('--only='.length) : argv[index + 1]
}
const DURATION_SECONDS = quick ? 1 : 8
/** A row with a target alternates with the baseline in this many slices of SLICE_SECONDS (16 s of each in all). */
const SLICES = 8
const SLICE_SECONDS = 2
/** Offered rates of the fixed-rate latency rows, each run twice for LATENCY_SECONDS beside the baseline. */
const LATENCY_RATES = quick ? [2000] : [1000, 2000, 4000]
const LATENCY_SECONDS = quick ? 1 : 4
/** Embedded-default starts timed; the median is the cold-start figure. */
const COLD_STARTS = quick ? 3 : 5
/**
 * The stand-in's answer time in the overload: capacity ≈ the provider-call cap ÷ this. At 400 ms the
 * instance's capacity is ~300 req/s, and three times it is a rate the load generator, on the same two
 * cores, can offer; at 100 ms (~1,000 req/s, 3,000 offered) the generator, the stand-in in its process
 * and keywrap saturated both cores, and the figure measured the machine rather than keywrap.
 */
const PROVIDER_OVERLOAD_LATENCY_MS = 400
const KMS_KEY = 'projects/bench/locations/global/keyRings/keywrap/cryptoKeys/bench'

interface Context {
  readonly baseline: BenchProcess
  readonly rows: Row[]
  readonly latencyRows: LatencyRow[]
  readonly facts: Record<string, number | string>
  /** Markdown sections printed after the tables. */
  readonly sections: string[]
  readonly home: string
  readonly token: string
  readonly kms: KmsStandIn
  readonly kmsAddress: string
  readonly redisUrl: string
}

async function main(): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-bench-'))
  const kms = new KmsStandIn()
  kms.createKey(KMS_KEY)
  const kmsServer = await kms.start()
  await writeFile(join(home, 'kms.json'), JSON.stringify({ keys: { default: 'local://default', kms: `gcp-kms://${KMS_KEY}` } }))
  const issuer = await loadDevIssuer(home)
  const baseline = await startBaseline()
  const context: Context = {
    baseline,
    rows: [],
    latencyRows: [],
    facts: {},
    sections: [],
    home,
    token: await mintDevToken(issuer, { subject: 'bench', audience: 'keywrap', ttlSeconds: 3600 }),
    kms,
    kmsAddress: kmsServer.address,
    redisUrl: await redisUrlForTests(),
  }
  if (!quick && !only) {
    const stalls = await timerStalls(10)
    context.facts.idleTimerStallsOver5MsIn10s = stalls.over5Ms
    context.facts.idleTimerLongestStallMs = stalls.longestMs
  }
  try {
    if (!only) {
      await localScenarios(context)
      await redisScenarios(context)
      await authAndAuditScenarios(context)
      await cloudKmsScenarios(context)
    }
    if (!only || only === 'overload') {
      await providerOverloadScenario(context)
      if (only)
        context.sections.push(
          Object.entries(context.facts)
            .map(([name, value]) => `- ${name}: ${value}`)
            .join('\n'),
        )
    }
    if (!only || clientOnly) await clientScenarios(context)
    if (!only || onlyCampaign)
      await rewrapCampaign({
        home,
        token: context.token,
        kms,
        kmsKey: KMS_KEY,
        kmsAddress: kmsServer.address,
        alias: 'kms',
        quick,
        facts: context.facts,
        withKeywrap: (env, body) => withKeywrap(context, env, body),
      })
    if (!only || only === 'kms-plugin') {
      context.sections.push(await kmsPluginScenarios({ home, kms, kmsKey: KMS_KEY, kmsAddress: kmsServer.address, quick }))
    }
  } finally {
    await kmsServer.close()
    await baseline.stop()
  }
  if (onlyCampaign) await reportCampaign(context)
  else await report(context)
}

async function reportCampaign(context: Context): Promise<void> {
  const cpu = cpus()
  const header = `keywrap rewrap campaign, ${new Date().toISOString().slice(0, 10)}, ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown'}), Node ${process.version}`
  const markdown = `${header}\n\n${Object.entries(context.facts)
    .map(([name, value]) => `- ${name}: ${value}`)
    .join('\n')}\n`
  process.stdout.write(`\n${markdown}`)
  if (!quick) await writeFile(`${await resultFileStem(new Date(), process.versions.node, undefined, 'rewrap-campaign')}.md`, markdown)
}

/** Starts keywrap on the bench home with `env`, runs `body`, stops it. */
async function withKeywrap(context: Context, env: Record<string, string>, body: (keywrap: BenchProcess) => Promise<void>): Promise<BenchProcess> {
  const keywrap = await startKeywrap({
    KEYWRAP_HOME: context.home,
    KEYWRAP_CONFIG: join(context.home, 'kms.json'),
    KMS_EMULATOR_HOST: context.kmsAddress,
    GOOGLE_CLOUD_PROJECT: 'bench',
    ...env,
  })
  try {
    await body(keywrap)
  } finally {
    await keywrap.stop()
  }
  return keywrap
}

/**
 * A scenario with a target ratio, measured in the full run in slices alternating with its own runs
 * of the baseline (same path and body sizes): these machines are shared, and their speed drifts.
 */
async function targetScenario(context: Context, scenario: string, keywrap: BenchProcess, request: LoadRequest): Promise<Row> {
  if (quick) return load(scenario, keywrap, request, DURATION_SECONDS)
  return loadAlternating(scenario, keywrap, request, context.baseline, withoutToken(request), SLICES, SLICE_SECONDS)
}

/** p50 and p99 at fixed offered rates (open loop, 50 connections), beside the baseline at the same rates. */
async function fixedRateLatency(context: Context, scenario: string, keywrap: BenchProcess, request: LoadRequest): Promise<void> {
  context.latencyRows.push(
    ...(await latencyBesideBaseline(scenario, keywrap, request, context.baseline, withoutToken(request), LATENCY_RATES, LATENCY_SECONDS)),
  )
}

/**
 * The two target rows served by the simplest audited key service (bench/minimal-service.ts), measured
 * the same way beside the same baseline: what the targets leave for everything keywrap does besides.
 */
async function minimalServiceScenarios(context: Context): Promise<void> {
  const { rows, token } = context
  const minimal = await startKeywrap({ KEYWRAP_HOME: context.home }, 'bench/minimal-service.ts')
  try {
    const generated = await post(minimal, '/v1/keys/default:generateDataKey', token, {})
    const unwrap = { path: '/v1/keys/default:unwrap', body: { wrappedKey: generated.wrappedKey }, token }
    rows.push(await targetScenario(context, 'unwrap, L1 hit: the simplest audited service (bench/minimal-service.ts)', minimal, unwrap))
    const generate = { path: '/v1/keys/default:generateDataKey', body: {}, token }
    rows.push(await targetScenario(context, 'generateDataKey: the simplest audited service', minimal, generate))
  } finally {
    await minimal.stop()
  }
}

async function localScenarios(context: Context): Promise<void> {
  const { rows, facts, token, baseline } = context
  const keywrap = await withKeywrap(context, {}, async (keywrap) => {
    const generated = await post(keywrap, '/v1/keys/default:generateDataKey', token, {})
    const unwrapBody = { wrappedKey: generated.wrappedKey }
    rows.push(await load('baseline: bare Fastify, same body sizes', baseline, { path: '/v1/keys/default:unwrap', body: unwrapBody }, DURATION_SECONDS))
    rows.push(await targetScenario(context, 'unwrap, L1 hit', keywrap, { path: '/v1/keys/default:unwrap', body: unwrapBody, token }))
    rows.push(await targetScenario(context, 'generateDataKey, local KEK', keywrap, { path: '/v1/keys/default:generateDataKey', body: {}, token }))
    await minimalServiceScenarios(context)
    await fixedRateLatency(context, 'unwrap, L1 hit', keywrap, { path: '/v1/keys/default:unwrap', body: unwrapBody, token })
    if (!quick) await fixedRateLatency(context, 'generateDataKey, local KEK', keywrap, { path: '/v1/keys/default:generateDataKey', body: {}, token })
    rows.push(await load('rewrap, no-op (already primary)', keywrap, { path: '/v1/keys/default:rewrap', body: unwrapBody, token }, DURATION_SECONDS))
    await new KeyringFile(context.home).rotate('default')
    await new Promise((resolve) => setTimeout(resolve, 300))
    rows.push(await load('rewrap, real (L1 hit + local encrypt)', keywrap, { path: '/v1/keys/default:rewrap', body: unwrapBody, token }, DURATION_SECONDS))
  })
  facts.coldStartWithCloudKmsKeyToReadyMs = Math.round(keywrap.startedToReadyMs)
  // The target's case: the embedded default (the local keyring only; no Cloud KMS client loaded).
  // One start says little on a machine whose speed moves by a third within seconds: the median of
  // COLD_STARTS, and all of them. Then (full run) RSS of the last, still fresh, process when ready
  // and with 100,000 DEKs in L1.
  // Each start alternates with a bare Fastify server's, started and timed the same way: the target is a ratio.
  const starts: number[] = []
  const bareStarts: number[] = []
  let embedded!: BenchProcess
  for (let start = 1; start <= COLD_STARTS; start++) {
    const bare = await startBareForColdStart()
    bareStarts.push(Math.round(bare.startedToReadyMs))
    await bare.stop()
    embedded = await startKeywrap({ KEYWRAP_HOME: context.home })
    starts.push(Math.round(embedded.startedToReadyMs))
    if (start < COLD_STARTS) await embedded.stop()
  }
  try {
    facts.coldStartToReadyMs = median(starts)
    facts.coldStartsToReadyMs = starts.join(' ')
    facts.coldStartBareFastifyToReadyMs = median(bareStarts)
    facts.coldStartsBareFastifyToReadyMs = bareStarts.join(' ')
    facts.coldStartTimesBareFastify = Math.round((median(starts) / median(bareStarts)) * 100) / 100
    if (!quick) {
      const rss = await rssWithCachedDeks(embedded, token)
      facts.rssWhenReadyMiB = rss.readyMiB
      facts.rssWith100kCachedDeksMiB = rss.filledMiB
    }
  } finally {
    await embedded.stop()
  }
  if (!quick) {
    // The same with a Cloud KMS key configured (Google's client libraries loaded).
    await withKeywrap(context, {}, async (withKms) => {
      const rss = await rssWithCachedDeks(withKms, token)
      facts.rssWithCloudKmsKeyWhenReadyMiB = rss.readyMiB
      facts.rssWithCloudKmsKeyWith100kCachedDeksMiB = rss.filledMiB
    })
  }
}

/** RSS when ready, then after 100,000 generateDataKey calls have written their DEKs through to L1. */
async function rssWithCachedDeks(keywrap: BenchProcess, token: string): Promise<{ readyMiB: number; filledMiB: number }> {
  const readyMiB = Math.round((await keywrap.rssBytes()) / 1048576)
  await load('fill L1', keywrap, { path: '/v1/keys/default:generateDataKey', body: { includePlaintext: false }, token }, 0, { amount: 100_000 })
  return { readyMiB, filledMiB: Math.round((await keywrap.rssBytes()) / 1048576) }
}

async function redisScenarios(context: Context): Promise<void> {
  const prefix = `kwbench:${Date.now()}:`
  const env = { REDIS_URL: context.redisUrl, KEYWRAP_REDIS_KEY_PREFIX: prefix, KEYWRAP_CACHE_MAX_ENTRIES: '0' }
  await withKeywrap(context, env, async (keywrap) => {
    const generated = await post(keywrap, '/v1/keys/default:generateDataKey', context.token, {})
    context.rows.push(
      await targetScenario(context, 'unwrap, L2 hit (L1 off, local Redis)', keywrap, {
        path: '/v1/keys/default:unwrap',
        body: { wrappedKey: generated.wrappedKey },
        token: context.token,
      }),
    )
  })
  const redis = new Redis(context.redisUrl)
  const keys = await redis.keys(`${prefix}*`)
  if (keys.length > 0) await redis.del(...keys)
  redis.disconnect()
}

/** The verified-token cache on and off, and the cost of each audit sink, on unwrap L1 hits. */
async function authAndAuditScenarios(context: Context): Promise<void> {
  const { rows, token, home } = context
  const unwrapL1 = async (scenario: string, env: Record<string, string>) =>
    withKeywrap(context, env, async (keywrap) => {
      const generated = await post(keywrap, '/v1/keys/default:generateDataKey', token, {})
      rows.push(await load(scenario, keywrap, { path: '/v1/keys/default:unwrap', body: { wrappedKey: generated.wrappedKey }, token }, DURATION_SECONDS))
    })
  await writeFile(join(home, 'no-token-cache.json'), JSON.stringify({ keys: { default: 'local://default' }, auth: { tokenCacheEntries: 0 } }))
  await unwrapL1('unwrap, L1 hit, verified-token cache off', { KEYWRAP_CONFIG: join(home, 'no-token-cache.json') })
  await unwrapL1('unwrap, L1 hit, audit to a file sink', { KEYWRAP_AUDIT_SINK: `file:${join(home, 'audit.jsonl')}` })
  const logging = new LoggingStandIn()
  const loggingServer = await logging.start()
  try {
    await unwrapL1('unwrap, L1 hit, audit to the Logging API (stand-in)', { KEYWRAP_AUDIT_SINK: 'cloud-logging', LOGGING_EMULATOR_HOST: loggingServer.address })
  } finally {
    await loggingServer.close()
  }
}

async function cloudKmsScenarios(context: Context): Promise<void> {
  const { rows, facts, token, kms } = context
  const noCache = { KEYWRAP_CACHE_MAX_ENTRIES: '0' }
  await withKeywrap(context, noCache, async (keywrap) => {
    rows.push(await load('generateDataKey, Cloud KMS stand-in at 0 ms', keywrap, { path: '/v1/keys/kms:generateDataKey', body: {}, token }, DURATION_SECONDS))
    const wrapped = await postMany(keywrap, '/v1/keys/kms:generateDataKey', token, quick ? 500 : 2000, () => ({ includePlaintext: false }))
    let next = 0
    const bodies = () => JSON.stringify({ wrappedKey: wrapped[next++ % wrapped.length]!.wrappedKey })
    for (const latencyMs of [0, 50]) {
      kms.setFaults({ latencyMs })
      rows.push(await load(`unwrap, miss: Cloud KMS stand-in at ${latencyMs} ms`, keywrap, { path: '/v1/keys/kms:unwrap', bodies, token }, DURATION_SECONDS))
    }
    kms.clearFaults()
  })

  // KMS calls per 1000 unwraps at a realistic hit ratio: Zipf over 10,000 DEKs, cache as configured by
  // default; a 1 s key refresh so that the rotation before the batch is seen.
  await withKeywrap(context, { KEYWRAP_KEY_REFRESH_SECONDS: '1' }, async (keywrap) => {
    const count = quick ? 1000 : 10_000
    const wrapped = await postMany(keywrap, '/v1/keys/kms:generateDataKey', token, count, () => ({ includePlaintext: false }))
    await post(keywrap, '/v1/keys/kms:purgeCache', token, {})
    kms.resetCounters()
    const pick = zipfSampler(count, 1.0)
    const unwraps = quick ? 1000 : 10_000
    await postMany(keywrap, '/v1/keys/kms:unwrap', token, unwraps, () => ({ wrappedKey: wrapped[pick()]!.wrappedKey }))
    facts.zipfDeks = count
    facts.zipfUnwraps = unwraps
    facts.kmsDecryptsPer1000Unwraps = Math.round((kms.calls.Decrypt / unwraps) * 1000)
    facts.zipfHitRatio = Math.round((1 - kms.calls.Decrypt / unwraps) * 1000) / 1000

    // batchRewrap of 1000 with the stand-in at 50 ms, after a rotation (their DEKs are cached: one Encrypt each).
    kms.rotate(KMS_KEY)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const items = wrapped.slice(0, 1000).map((w) => ({ wrappedKey: w.wrappedKey }))
    kms.setFaults({ latencyMs: 50 })
    kms.resetCounters()
    const started = performance.now()
    const batch = await post(keywrap, '/v1/keys/kms:batchRewrap', token, { items })
    facts.batchRewrap1000At50msMs = Math.round(performance.now() - started)
    facts.batchRewrap1000Rewrapped = batch.results.filter((r: { rewrapped?: boolean }) => r.rewrapped === true).length
    facts.batchRewrap1000KmsCalls = kms.calls.Encrypt + kms.calls.Decrypt
    kms.clearFaults()
  })
}

/**
 * Three times the capacity of one instance, offered on a schedule over 1,000 sockets: past
 * KEYWRAP_MAX_IN_FLIGHT requests are shed with 503; the admitted ones' p99 is compared with the p99 at
 * half the capacity (unloaded), and RSS before and after. The instance is bound by its provider:
 * generateDataKey under the Cloud KMS key with the stand-in answering in PROVIDER_OVERLOAD_LATENCY_MS,
 * so that the provider-call cap and the in-flight limit bind. (A CPU-bound instance's three times
 * cannot be offered by a generator on the cores that instance runs on: docs/performance.md.)
 */
async function providerOverloadScenario(context: Context): Promise<void> {
  const { facts, token, kms } = context
  await withKeywrap(context, {}, async (keywrap) => {
    kms.setFaults({ latencyMs: PROVIDER_OVERLOAD_LATENCY_MS })
    try {
      const request = { path: '/v1/keys/kms:generateDataKey', body: { includePlaintext: false }, token }
      // As many connections as the in-flight limit admits: each waits on the provider, none is shed.
      // Only answers of 200 count (a 503 is cheap, and would pass for capacity).
      const measured = await load('overload, provider-bound: capacity', keywrap, request, DURATION_SECONDS, { connections: 128 })
      const capacity = Math.round(measured.requestsPerSecond - measured.errors / DURATION_SECONDS)
      facts.providerOverloadKmsLatencyMs = PROVIDER_OVERLOAD_LATENCY_MS
      await overloadFacts(context, keywrap, request, capacity)
    } finally {
      kms.clearFaults()
    }
  })
}

/**
 * The p99 at half the capacity, then three times the capacity, each offered on a schedule over 1,000
 * sockets: what was shed, the admitted requests' p99, RSS before and after, and /healthz afterwards,
 * as facts named `providerOverload…`.
 */
async function overloadFacts(context: Context, keywrap: BenchProcess, request: LoadRequest, capacity: number): Promise<void> {
  const prefix = 'providerOverload'
  const sockets = 1000
  const unloaded = await openLoop(keywrap, request, Math.round(capacity / 2), LATENCY_SECONDS, sockets)
  const rssBeforeMiB = Math.round((await keywrap.rssBytes()) / 1048576)
  const seconds = quick ? 2 : 8
  const overloaded = await openLoop(keywrap, request, capacity * 3, seconds, sockets)
  const health = await fetch(new URL('/healthz', keywrap.url))
  Object.assign(context.facts, {
    [`${prefix}CapacityRequestsPerSecond`]: capacity,
    [`${prefix}UnloadedP99Ms`]: unloaded.p99Ms,
    [`${prefix}OfferedPerSecond`]: overloaded.offeredPerSecond,
    [`${prefix}CompletedPerSecond`]: overloaded.completedPerSecond,
    [`${prefix}Admitted`]: Math.round(overloaded.offeredPerSecond * seconds) - overloaded.shed - overloaded.errors,
    [`${prefix}Shed503`]: overloaded.shed,
    [`${prefix}OtherErrors`]: overloaded.errors,
    [`${prefix}AdmittedP99Ms`]: overloaded.admittedP99Ms,
    [`${prefix}AdmittedP99TimesUnloaded`]: Math.round((overloaded.admittedP99Ms / unloaded.p99Ms) * 100) / 100,
    [`${prefix}RssMiB`]: `${rssBeforeMiB} → ${Math.round((await keywrap.rssBytes()) / 1048576)}`,
    [`${prefix}HealthzAfter`]: health.status,
  })
}

/** @keywrap/client against keywrap on the embedded default, its audit trail in a file to count service calls. */
async function clientScenarios(context: Context): Promise<void> {
  const auditFile = join(context.home, `client-audit-${Date.now()}.jsonl`)
  await withKeywrap(context, { KEYWRAP_AUDIT_SINK: `file:${auditFile}` }, async (keywrap) => {
    Object.assign(context.facts, await clientFacts(keywrap, { quick, token: context.token, auditFile }))
  })
}

async function report(context: Context): Promise<void> {
  const sections = context.sections.map((section) => `\n${section}\n`).join('')
  if (clientOnly) {
    // Its figures only, printed: the help promises that this section alone writes nothing.
    process.stdout.write(
      `\n${Object.entries(context.facts)
        .map(([name, value]) => `- ${name}: ${value}`)
        .join('\n')}\n`,
    )
    return
  }
  if (only) {
    process.stdout.write(sections)
    if (!quick) await writeFile(`${await resultFileStem(new Date(), process.versions.node, undefined, only)}.md`, `${sections.trim()}\n`)
    return
  }
  const { rows, facts } = context
  const floor = rows[0]?.requestsPerSecond ?? 0
  for (const row of rows) {
    row.baselineRequestsPerSecond ??= floor
    row.ratioToBaseline = ratio(row.requestsPerSecond, row.baselineRequestsPerSecond)
  }
  const cpu = cpus()
  const header =
    `keywrap benchmark, ${new Date().toISOString().slice(0, 10)}, ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown'}), Node ${process.version}; ` +
    `autocannon with 50 connections, ${DURATION_SECONDS} s per scenario after 1 s of warm-up, on the same machine; ` +
    (quick
      ? 'every ratio is to the first baseline row'
      : `the rows with targets (L1 hit, generate, L2 hit) and the simplest audited service's alternate with their own baseline runs in ${SLICES} slices of ${SLICE_SECONDS} s, ABBA (ratio of the totals, and the lowest and highest ratio of a slice to its baseline slice; p50 the median slice's, p99 the worst slice's, and the baseline's worst slice beside it)`)
  const table = [
    '| scenario | req/s | baseline req/s | × baseline | × per slice | p50 ms | p99 ms | baseline p99 ms | server CPU µs/req | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.requestsPerSecond} | ${r.baselineRequestsPerSecond} | ${r.ratioToBaseline} | ${r.sliceRatioRange?.join('–') ?? ''} | ` +
        `${r.p50Ms} | ${r.p99Ms} | ${r.baselineP99Ms ?? ''} | ${r.serverCpuUsPerRequest} | ${r.errors} |`,
    ),
  ].join('\n')
  const latencyHeader =
    `Latency at a fixed offered rate: requests sent on a schedule (open loop) over at most 50 keep-alive connections, each timed from when it was due; ` +
    `at each rate the baseline and keywrap ran twice for ${LATENCY_SECONDS} s each (ABBA); both runs shown`
  const both = (runs: readonly OpenLoopResult[], pick: (run: OpenLoopResult) => number) => runs.map(pick).join(', ')
  const latencyTable = [
    '| scenario | offered req/s | p50 ms | p99 ms | max ms | baseline p50 ms | baseline p99 ms | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...context.latencyRows.map(
      (r) =>
        `| ${r.scenario} | ${r.offeredPerSecond} | ${both(r.runs, (run) => run.p50Ms)} | ${both(r.runs, (run) => run.p99Ms)} | ${both(r.runs, (run) => run.maxMs)} | ` +
        `${both(r.baselineRuns, (run) => run.p50Ms)} | ${both(r.baselineRuns, (run) => run.p99Ms)} | ${r.runs[0].errors + r.runs[1].errors} |`,
    ),
  ].join('\n')
  const factLines = Object.entries(facts)
    .map(([name, value]) => `- ${name}: ${value}`)
    .join('\n')
  const markdown = `${header}\n\n${table}\n\n${latencyHeader}\n\n${latencyTable}\n\n${factLines}\n${sections}`
  process.stdout.write(`\n${markdown}`)
  if (!quick && !clientOnly) {
    const stem = await resultFileStem(new Date(), process.versions.node)
    await writeFile(`${stem}.json`, `${JSON.stringify({ header, rows, latencyHeader, latencyRows: context.latencyRows, facts }, null, 2)}\n`)
    await writeFile(`${stem}.md`, markdown)
    process.stdout.write(`\nwritten: ${stem}.json, ${stem}.md\n`)
  }
}

await main()
