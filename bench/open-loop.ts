/**
 * Latency at a fixed offered rate, the way a workload meets the service: requests are sent on a
 * schedule whatever the answers do (open loop), over at most `connections` keep-alive sockets, and
 * each latency counts from the moment the schedule said to send. A closed loop (autocannon, wrk)
 * measures at saturation, where the median is connections ÷ throughput; and when a response is slow
 * it sends less, so the stall it should have felt goes uncounted ("coordinated omission").
 */
import { Agent, request as httpRequest } from 'node:http'
import type { BenchProcess } from './processes.js'
import type { LoadRequest } from './load.js'

export interface OpenLoopResult {
  readonly offeredPerSecond: number
  readonly completedPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly errors: number
  /** Answered 503 (shed by the in-flight limit or the provider-call cap). */
  readonly shed: number
  /** p99 of the requests answered 200 only. */
  readonly admittedP99Ms: number
}

export async function openLoop(target: BenchProcess, request: LoadRequest, ratePerSecond: number, seconds: number, connections = 50): Promise<OpenLoopResult> {
  const url = new URL(request.path, target.url)
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (request.token) headers.authorization = `Bearer ${request.token}`
  const body = JSON.stringify(request.body ?? {})
  headers['content-length'] = String(Buffer.byteLength(body))
  const total = Math.round(ratePerSecond * seconds)
  const latencies = new Float64Array(total)
  const admitted = new Uint8Array(total)
  let shed = 0
  let completed = 0
  let errors = 0
  const interval = 1000 / ratePerSecond
  const started = performance.now()
  let done!: () => void
  const finished = new Promise<void>((resolve) => (done = resolve))
  const send = (index: number, due: number) => {
    const complete = () => {
      latencies[index] = performance.now() - due
      if (++completed === total) done()
    }
    const outgoing = httpRequest({ agent, hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers }, (response) => {
      if (response.statusCode === 200) admitted[index] = 1
      else if (response.statusCode === 503) shed++
      else errors++
      response.resume()
      response.on('end', complete)
    })
    outgoing.on('error', () => {
      errors++
      complete()
    })
    outgoing.end(body)
  }
  let next = 0
  const tick = () => {
    const now = performance.now()
    // Every request whose time has come goes now; a late timer sends a small burst, as a real fleet would.
    while (next < total && started + next * interval <= now) {
      send(next, started + next * interval)
      next++
    }
    if (next < total) setTimeout(tick, Math.max(0, started + next * interval - performance.now()))
  }
  tick()
  await finished
  const elapsedSeconds = (performance.now() - started) / 1000
  agent.destroy()
  const admittedLatencies = Float64Array.from(latencies.filter((_, index) => admitted[index] === 1)).sort()
  const sorted = latencies.sort()
  const at = (quantile: number) => Math.round(sorted[Math.min(total - 1, Math.floor(quantile * total))]! * 10) / 10
  return {
    offeredPerSecond: ratePerSecond,
    completedPerSecond: Math.round(total / elapsedSeconds),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: at(1),
    errors,
    shed,
    admittedP99Ms: Math.round((admittedLatencies[Math.min(admittedLatencies.length - 1, Math.floor(0.99 * admittedLatencies.length))] ?? 0) * 10) / 10,
  }
}

export interface LatencyRow {
  readonly scenario: string
  readonly offeredPerSecond: number
  /** keywrap's two runs at this rate, in the order they ran. */
  readonly runs: readonly [OpenLoopResult, OpenLoopResult]
  /** The baseline's two runs, one before and one after keywrap's. */
  readonly baselineRuns: readonly [OpenLoopResult, OpenLoopResult]
}

/**
 * `target` and the baseline at each offered rate, twice each in ABBA order (the machine drifts),
 * after a warm-up of both at the lowest rate.
 */
export async function latencyBesideBaseline(
  scenario: string,
  target: BenchProcess,
  request: LoadRequest,
  baseline: BenchProcess,
  baselineRequest: LoadRequest,
  rates: readonly number[],
  seconds: number,
): Promise<LatencyRow[]> {
  await openLoop(baseline, baselineRequest, rates[0]!, 1)
  await openLoop(target, request, rates[0]!, 1)
  const rows: LatencyRow[] = []
  for (const rate of rates) {
    const floorBefore = await openLoop(baseline, baselineRequest, rate, seconds)
    const ours = [await openLoop(target, request, rate, seconds), await openLoop(target, request, rate, seconds)] as const
    const floorAfter = await openLoop(baseline, baselineRequest, rate, seconds)
    rows.push({ scenario, offeredPerSecond: rate, runs: ours, baselineRuns: [floorBefore, floorAfter] })
  }
  return rows
}
