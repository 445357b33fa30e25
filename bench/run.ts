/**
 * `npm run bench [-- --quick]`: drives the real service (compiled, started as production starts it)
 * over real sockets with autocannon, beside a bare-Fastify baseline measured in the same run. These
 * machines are shared, so every figure is also given as a ratio to the baseline of this run.
 */
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { loadDevIssuer, mintDevToken } from '../src/auth/dev-issuer.js'
import { KeyringFile } from '../src/providers/local/keyring-file.js'
import { ROOT, startBaseline, startKeywrap, type BenchProcess } from './processes.js'

const quick = process.argv.includes('--quick')
const DURATION_SECONDS = quick ? 3 : 10
const CONNECTIONS = 50

interface Row {
  scenario: string
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  ratioToBaseline?: number
  errors: number
  note?: string
}

interface Request {
  path: string
  body?: unknown
  /** A different body per request (e.g. many keys); overrides body. */
  bodies?: () => string
  token?: string
}

async function load(scenario: string, target: BenchProcess, request: Request, options: { amount?: number; connections?: number } = {}): Promise<Row> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (request.token) headers.authorization = `Bearer ${request.token}`
  const bodies = request.bodies
  const result = await autocannon({
    url: `${target.url}${request.path}`,
    method: 'POST',
    headers,
    connections: options.connections ?? CONNECTIONS,
    ...(options.amount ? { amount: options.amount } : { duration: DURATION_SECONDS }),
    ...(bodies
      ? { requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: bodies() }) }] }
      : { body: JSON.stringify(request.body ?? {}) }),
  })
  return {
    scenario,
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
  }
}

async function post(target: BenchProcess, path: string, token: string, body: unknown): Promise<any> {
  const response = await fetch(`${target.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return response.json()
}

async function main(): Promise<void> {
  const rows: Row[] = []
  const facts: Record<string, number | string> = {}
  const home = await mkdtemp(join(tmpdir(), 'keywrap-bench-'))

  const baseline = await startBaseline()
  const keywrap = await startKeywrap({ KEYWRAP_HOME: home, KEYWRAP_LOG_LEVEL: 'info' })
  facts.coldStartToReadyMs = Math.round(keywrap.startedToReadyMs)
  const issuer = await loadDevIssuer(home)
  const token = await mintDevToken(issuer, { subject: 'bench', audience: 'keywrap', ttlSeconds: 3600 })

  try {
    const generated = await post(keywrap, '/v1/keys/default:generateDataKey', token, {})
    const unwrapBody = { wrappedKey: generated.wrappedKey }

    rows.push(await load('baseline (bare Fastify, same body sizes)', baseline, { path: '/v1/keys/default:unwrap', body: unwrapBody }))
    rows.push(await load('unwrap, L1 hit', keywrap, { path: '/v1/keys/default:unwrap', body: unwrapBody, token }))
    rows.push(await load('generateDataKey (local KEK)', keywrap, { path: '/v1/keys/default:generateDataKey', body: {}, token }))
    rows.push(await load('rewrap, no-op (already primary)', keywrap, { path: '/v1/keys/default:rewrap', body: unwrapBody, token }))

    await new KeyringFile(home).rotate('default')
    await new Promise((resolve) => setTimeout(resolve, 300))
    rows.push(await load('rewrap, real (L1 hit + encrypt)', keywrap, { path: '/v1/keys/default:rewrap', body: unwrapBody, token }))

    if (!quick) {
      const before = await keywrap.rssBytes()
      await load('fill L1 with 100,000 DEKs', keywrap, { path: '/v1/keys/default:generateDataKey', body: { includePlaintext: false }, token }, { amount: 100_000 })
      facts.rssBeforeFillMiB = Math.round(before / 1048576)
      facts.rssWith100kCachedDeksMiB = Math.round((await keywrap.rssBytes()) / 1048576)
    }
  } finally {
    await keywrap.stop()
    await baseline.stop()
  }

  const floor = rows[0]!.requestsPerSecond
  for (const row of rows) row.ratioToBaseline = Math.round((row.requestsPerSecond / floor) * 100) / 100
  const header = `keywrap benchmark, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, ${CONNECTIONS} connections, ${DURATION_SECONDS} s per scenario, load generator on the same machine`
  const table = [
    `| scenario | req/s | × baseline | p50 ms | p99 ms | errors |`,
    `|---|---:|---:|---:|---:|---:|`,
    ...rows.map((r) => `| ${r.scenario} | ${r.requestsPerSecond} | ${r.ratioToBaseline} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors} |`),
  ].join('\n')
  const factLines = Object.entries(facts).map(([name, value]) => `- ${name}: ${value}`).join('\n')
  process.stdout.write(`\n${header}\n\n${table}\n\n${factLines}\n`)
  if (!quick) {
    await mkdir(join(ROOT, 'bench'), { recursive: true })
    await writeFile(join(ROOT, 'bench/results.json'), `${JSON.stringify({ header, rows, facts }, null, 2)}\n`)
    await writeFile(join(ROOT, 'bench/results.md'), `${header}\n\n${table}\n\n${factLines}\n`)
  }
}

await main()
