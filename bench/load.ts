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

export async function load(
  scenario: string,
  target: BenchProcess,
  request: LoadRequest,
  durationSeconds: number,
  options: { amount?: number; connections?: number } = {},
): Promise<Row> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (request.token) headers.authorization = `Bearer ${request.token}`
  const bodies = request.bodies
  const run = (limit: { duration: number } | { amount: number }) =>
    autocannon({
      url: `${target.url}${request.path}`,
      method: 'POST',
      headers,
      connections: options.connections ?? 50,
      ...limit,
      ...(bodies
        ? { requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: bodies() }) }] }
        : { body: JSON.stringify(request.body ?? {}) }),
    })
  // A second of the same load first, unmeasured: figures are for a warm (JIT-compiled) process.
  if (!options.amount) await run({ duration: WARM_UP_SECONDS })
  const cpuBefore = await target.cpuSeconds()
  const result = await run(options.amount ? { amount: options.amount } : { duration: durationSeconds })
  const cpuSeconds = (await target.cpuSeconds()) - cpuBefore
  return {
    scenario,
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    serverCpuUsPerRequest: Math.round((cpuSeconds * 1e6) / Math.max(1, result.requests.total)),
    errors: result.non2xx + result.errors + result.timeouts,
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
