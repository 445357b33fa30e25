/** Load generation for the benchmark: autocannon runs, plain request loops, and a Zipf sampler. */
import autocannon from 'autocannon'
import type { BenchProcess } from './processes.js'

export interface Row {
  scenario: string
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  /** Server CPU (all threads) per request, in microseconds: steadier than req/s on a shared machine. */
  serverCpuUsPerRequest: number
  /** req/s of the baseline this row is compared with. */
  baselineRequestsPerSecond?: number
  ratioToBaseline?: number
  /** Alternated rows: the lowest and highest ratio of one slice to its baseline slice, to show the drift. */
  sliceRatioRange?: [number, number]
  /** Alternated rows: the p99 of the baseline's worst slice, beside this row's worst slice. */
  baselineP99Ms?: number
  errors: number
}

export interface LoadRequest {
  path: string
  body?: unknown
  /** A different body per request (e.g. many keys); overrides body. */
  bodies?: () => string
  token?: string
}

const WARM_UP_SECONDS = 1

/** One autocannon run's totals. */
interface Measured {
  readonly requests: number
  readonly seconds: number
  readonly cpuSeconds: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
}

async function measure(target: BenchProcess, request: LoadRequest, limit: { duration: number } | { amount: number }, connections = 50): Promise<Measured> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (request.token) headers.authorization = `Bearer ${request.token}`
  const bodies = request.bodies
  const cpuBefore = await target.cpuSeconds()
  const result = await autocannon({
    url: `${target.url}${request.path}`,
    method: 'POST',
    headers,
    connections,
    ...limit,
    ...(bodies ? { requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: bodies() }) }] } : { body: JSON.stringify(request.body ?? {}) }),
  })
  return {
    requests: result.requests.total,
    seconds: result.duration,
    cpuSeconds: (await target.cpuSeconds()) - cpuBefore,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
  }
}

/** The middle value (the upper one of an even count). */
export function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
}

/** The same request as the baseline receives it: the baseline checks no token. */
export function withoutToken(request: LoadRequest): LoadRequest {
  const { token: _token, ...anonymous } = request
  return anonymous
}

/** A rate as a multiple of the baseline's, to two places. */
export function ratio(requestsPerSecond: number, baselineRequestsPerSecond: number): number {
  return Math.round((requestsPerSecond / baselineRequestsPerSecond) * 100) / 100
}

function rowOf(scenario: string, runs: readonly Measured[]): Row {
  const requests = runs.reduce((sum, run) => sum + run.requests, 0)
  const seconds = runs.reduce((sum, run) => sum + run.seconds, 0)
  const cpuSeconds = runs.reduce((sum, run) => sum + run.cpuSeconds, 0)
  return {
    scenario,
    requestsPerSecond: Math.round(requests / seconds),
    p50Ms: median(runs.map((run) => run.p50Ms)),
    // The worst slice's: a percentile of slices cannot be merged, and the target is a ceiling.
    p99Ms: Math.max(...runs.map((run) => run.p99Ms)),
    serverCpuUsPerRequest: Math.round((cpuSeconds * 1e6) / Math.max(1, requests)),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
  }
}

export async function load(
  scenario: string,
  target: BenchProcess,
  request: LoadRequest,
  durationSeconds: number,
  options: { amount?: number; connections?: number } = {},
): Promise<Row> {
  // The same load first, unmeasured: figures are for a warm (JIT-compiled) process. A second, or half
  // of a shorter run (--quick).
  if (!options.amount) await measure(target, request, { duration: Math.min(WARM_UP_SECONDS, durationSeconds / 2) }, options.connections)
  const limit = options.amount ? { amount: options.amount } : { duration: durationSeconds }
  return rowOf(scenario, [await measure(target, request, limit, options.connections)])
}

/**
 * `target` and the baseline in alternating slices, after a warm-up of each: the machine's speed
 * drifts over seconds, and a ratio of totals taken slice by slice cancels most of the drift that one
 * baseline run before one target run would carry into the ratio. The order flips every slice (ABBA),
 * so that a steady drift does not favour whichever runs first.
 */
export async function loadAlternating(
  scenario: string,
  target: BenchProcess,
  request: LoadRequest,
  baseline: BenchProcess,
  baselineRequest: LoadRequest,
  slices: number,
  sliceSeconds: number,
): Promise<Row> {
  await measure(baseline, baselineRequest, { duration: WARM_UP_SECONDS })
  await measure(target, request, { duration: WARM_UP_SECONDS })
  const ours: Measured[] = []
  const floor: Measured[] = []
  for (let slice = 0; slice < slices; slice++) {
    if (slice % 2 === 0) floor.push(await measure(baseline, baselineRequest, { duration: sliceSeconds }))
    ours.push(await measure(target, request, { duration: sliceSeconds }))
    if (slice % 2 === 1) floor.push(await measure(baseline, baselineRequest, { duration: sliceSeconds }))
  }
  const row = rowOf(scenario, ours)
  const baselineRow = rowOf(`baseline for ${scenario}`, floor)
  const perSecond = (run: Measured) => run.requests / run.seconds
  const sliceRatios = ours.map((run, slice) => ratio(perSecond(run), perSecond(floor[slice]!)))
  return {
    ...row,
    baselineRequestsPerSecond: baselineRow.requestsPerSecond,
    sliceRatioRange: [Math.min(...sliceRatios), Math.max(...sliceRatios)],
    baselineP99Ms: baselineRow.p99Ms,
  }
}

export async function post(target: BenchProcess, path: string, token: string, body: unknown): Promise<any> {
  const response = await fetch(`${target.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return response.json()
}

/** `count` requests, 50 at a time; their answers in order. */
export async function postMany(target: BenchProcess, path: string, token: string, count: number, body: (index: number) => unknown): Promise<any[]> {
  const answers = new Array<any>(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const index = next++
      answers[index] = await post(target, path, token, body(index))
    }
  }
  await Promise.all(Array.from({ length: 50 }, worker))
  return answers
}

/** Indices 0..n-1 drawn with probability ∝ 1/(rank^s), like real key popularity. */
export function zipfSampler(n: number, s: number): () => number {
  const cumulative = new Float64Array(n)
  let total = 0
  for (let rank = 1; rank <= n; rank++) {
    total += 1 / rank ** s
    cumulative[rank - 1] = total
  }
  return () => {
    const target = Math.random() * total
    let low = 0
    let high = n - 1
    while (low < high) {
      const middle = (low + high) >> 1
      if (cumulative[middle]! < target) low = middle + 1
      else high = middle
    }
    return low
  }
}
