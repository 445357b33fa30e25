/**
 * Per-request CPU of keywrap builds beside the bare-Fastify baseline: unwrap L1 hits (or another
 * scenario), 50 connections, in alternating rounds (the order rotates each round); per server, the
 * median and range over rounds of its process CPU time per request and of requests/s. CPU per request
 * holds still on a busy machine where requests/s does not.
 *
 *   npm run build && node --import tsx bench/http-cpu.ts [DIST_DIR | SCRIPT.ts ...]    (default: dist)
 *   ROUNDS=8 SECONDS=3 SCENARIO=unwrap|generate
 *
 * A/B of a change: build the other version into a directory inside the repository (so that its imports
 * find node_modules), e.g. `npx tsc -p tsconfig.build.json --outDir build-a && cp -r dist/openapi.yaml
 * dist/openapi.yaml.json dist/schemas build-a/`, and pass both directories.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { loadDevIssuer, mintDevToken } from '../src/auth/dev-issuer.js'
import { median, post } from './load.js'
import { startBaseline, startKeywrap, type BenchProcess } from './processes.js'

const ROUNDS = Number(process.env.ROUNDS ?? 8)
const SECONDS = Number(process.env.SECONDS ?? 3)
const SCENARIO = process.env.SCENARIO ?? 'unwrap'
const builds = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['dist']

const home = await mkdtemp(join(tmpdir(), 'keywrap-http-cpu-'))
const token = await mintDevToken(await loadDevIssuer(home), { subject: 'bench', audience: 'keywrap', ttlSeconds: 3600 })
const servers: { name: string; process: BenchProcess; body: string; headers: Record<string, string> }[] = []
try {
  for (const dist of builds) {
    const keywrap = await startKeywrap({ KEYWRAP_HOME: home }, dist)
    const generated = await post(keywrap, '/v1/keys/default:generateDataKey', token, {})
    const body = SCENARIO === 'unwrap' ? JSON.stringify({ wrappedKey: generated.wrappedKey }) : '{}'
    servers.push({ name: dist, process: keywrap, body, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } })
  }
  servers.push({ name: 'bare', process: await startBaseline(), body: servers[0]!.body, headers: { 'content-type': 'application/json' } })
  const path = SCENARIO === 'unwrap' ? '/v1/keys/default:unwrap' : '/v1/keys/default:generateDataKey'
  const run = async (server: (typeof servers)[number], seconds: number) => {
    const before = await server.process.cpuSeconds()
    const result = await autocannon({
      url: `${server.process.url}${path}`,
      method: 'POST',
      headers: server.headers,
      body: server.body,
      connections: 50,
      duration: seconds,
    })
    const cpu = (await server.process.cpuSeconds()) - before
    if (result.non2xx > 0) throw new Error(`${server.name}: ${result.non2xx} answers were not 2xx`)
    return { cpuUs: Math.round((cpu * 1e6) / result.requests.total), perSecond: Math.round(result.requests.total / result.duration) }
  }
  for (const server of servers) await run(server, 1)
  const results = new Map(servers.map((server) => [server, { cpuUs: [] as number[], perSecond: [] as number[] }]))
  for (let round = 0; round < ROUNDS; round++) {
    const order = servers.map((_, index) => servers[(index + round) % servers.length]!)
    if (round % 2) order.reverse()
    for (const server of order) {
      const measured = await run(server, SECONDS)
      results.get(server)!.cpuUs.push(measured.cpuUs)
      results.get(server)!.perSecond.push(measured.perSecond)
    }
  }
  const bare = median(results.get(servers.at(-1)!)!.perSecond)
  for (const [server, result] of results) {
    const range = (values: number[]) => `${median(values)} (${Math.min(...values)}–${Math.max(...values)})`
    const times = Math.round((median(result.perSecond) / bare) * 100) / 100
    process.stdout.write(`${server.name}: CPU µs/request ${range(result.cpuUs)}, requests/s ${range(result.perSecond)}, × bare ${times}\n`)
  }
} finally {
  await Promise.all(servers.map((server) => server.process.stop()))
}
