/**
 * Per-call CPU of `keywrap kms-plugin` builds beside the bare gRPC server: cached Decrypts, 16 concurrent,
 * in alternating rounds (the order rotates each round); per server, the median and range over rounds of
 * its process CPU time (user + system) per call, of calls/s, and of this process's CPU per call (the
 * client's). CPU per call holds still on a busy machine where calls/s does not.
 *
 *   npm run build && node --import tsx bench/kms-plugin-cpu.ts [DIST_DIR | SCRIPT.ts ...]    (default: dist)
 *   ROUNDS=8 CALLS=4000 CONCURRENCY=16 PLUGIN_NODE_OPTIONS=...
 *
 * A/B of a change: build the other version into a directory inside the repository (so that its imports
 * find node_modules), e.g. `npx tsc -p tsconfig.build.json --outDir build-a && cp src/kms-plugin/api.proto
 * build-a/src/kms-plugin/`, and pass both directories.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { credentials } from '@grpc/grpc-js'
import { KMS_PLUGIN_ISSUER } from '../src/config/config.js'
import { KeyManagementServiceClient } from '../src/kms-plugin/kms-v2-api.js'
import { cachedDecryptRequest, type Client } from './kms-plugin.js'
import { BARE_PLUGIN, keywrapEnvironment, ROOT, startKmsPluginProcess } from './processes.js'

const ROUNDS = Number(process.env.ROUNDS ?? 8)
const CALLS = Number(process.env.CALLS ?? 4000)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16)
const builds = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['dist']

interface Server {
  readonly name: string
  readonly pid: number
  readonly client: Client
  stop(): void
}

const home = await mkdtemp(join(tmpdir(), 'keywrap-plugin-cpu-'))
const grants = [{ principals: ['kube-apiserver@*'], keys: ['kubernetes*'], operations: ['wrap', 'unwrap'], issuer: KMS_PLUGIN_ISSUER }]
await writeFile(join(home, 'kms-plugin.json'), JSON.stringify({ keys: { kubernetes: 'local://kubernetes' }, policy: { grants } }))

const clientOf = (url: string) => new KeyManagementServiceClient(url, credentials.createInsecure()) as unknown as Client
const call = (client: Client, method: string, request: unknown) =>
  new Promise<any>((resolve, reject) => client[method]!(request, (error, response) => (error ? reject(error) : resolve(response))))

/** A build of the plugin, started as processes.ts starts dist/ (stdout, the audit trail, drained by a cat). */
async function startBuild(dist: string, index: number): Promise<Server> {
  const socket = join(home, `plugin-${index}.sock`)
  const drain = spawn('cat', [], { stdio: ['pipe', 'ignore', 'ignore'] })
  const env = await keywrapEnvironment({ KEYWRAP_HOME: home, KEYWRAP_CONFIG: join(home, 'kms-plugin.json') })
  // e.g. `--require ./profile.cjs` (--cpu-prof is not allowed in NODE_OPTIONS)
  if (process.env.PLUGIN_NODE_OPTIONS) env.NODE_OPTIONS = `${env.NODE_OPTIONS} ${process.env.PLUGIN_NODE_OPTIONS}`
  // A .ts argument is a server script of its own (bench/kms-plugin-minimal.ts), started as the bare server is.
  const command = dist.endsWith('.ts')
    ? ['--import', 'tsx', dist, socket]
    : [join(resolve(ROOT, dist), 'src/cli/main.js'), 'kms-plugin', '--listen', socket, '--alias', 'kubernetes']
  const child = spawn(process.execPath, command, {
    cwd: ROOT,
    env,
    stdio: ['ignore', drain.stdin!, 'pipe'],
  })
  drain.stdin!.destroy()
  await new Promise<void>((ready, fail) => {
    let output = ''
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('listening on unix://')) ready()
      if (process.env.PLUGIN_NODE_OPTIONS) process.stderr.write(chunk)
    })
    child.once('exit', (code) => fail(new Error(`${dist} exited with ${code}: ${output}`)))
  })
  return { name: dist, pid: child.pid!, client: clientOf(`unix://${socket}`), stop: () => child.kill('SIGTERM') }
}

async function cpuTicks(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
  return Number(fields[11]) + Number(fields[12])
}

async function run(client: Client, count: number, request: unknown): Promise<number> {
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < count) await call(client, 'Decrypt', request)
    }),
  )
  return performance.now() - started
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const servers: Server[] = []
for (const [index, dist] of builds.entries()) servers.push(await startBuild(dist, index))
const bareOptions: Record<string, string> = process.env.PLUGIN_NODE_OPTIONS
  ? { NODE_OPTIONS: `${(await keywrapEnvironment({})).NODE_OPTIONS} ${process.env.PLUGIN_NODE_OPTIONS}` }
  : {}
const bare = await startKmsPluginProcess(join(home, 'bare.sock'), [], bareOptions, BARE_PLUGIN)
servers.push({ name: 'bare', pid: bare.pid, client: clientOf(bare.url), stop: () => void bare.stop() })
try {
  // The builds share one home (one keyring), so one ciphertext serves them all; the bare server answers
  // anything; a server script of its own (.ts) decrypts what it encrypted itself.
  const requests = new Map<Server, unknown>()
  for (const server of servers) requests.set(server, await cachedDecryptRequest(server.name.endsWith('.ts') ? server.client : servers[0]!.client))
  // Warm each (connection, JIT) before measuring.
  for (const server of servers) await run(server.client, 2000, requests.get(server))
  const results = new Map(servers.map((server) => [server, { cpuUs: [] as number[], perSecond: [] as number[], clientCpuUs: [] as number[] }]))
  for (let round = 0; round < ROUNDS; round++) {
    const order = servers.map((_, index) => servers[(index + round) % servers.length]!)
    if (round % 2) order.reverse()
    for (const server of order) {
      const before = await cpuTicks(server.pid)
      const clientBefore = process.cpuUsage()
      const ms = await run(server.client, CALLS, requests.get(server))
      const client = process.cpuUsage(clientBefore)
      const after = await cpuTicks(server.pid)
      results.get(server)!.clientCpuUs.push(Math.round((client.user + client.system) / CALLS))
      results.get(server)!.cpuUs.push(Math.round(((after - before) * 10_000) / CALLS))
      results.get(server)!.perSecond.push(Math.round((CALLS / ms) * 1000))
    }
  }
  for (const [server, result] of results) {
    const range = (values: number[]) => `${median(values)} (${Math.min(...values)}–${Math.max(...values)})`
    process.stdout.write(
      `${server.name}: CPU µs/call ${range(result.cpuUs)}, calls/s ${range(result.perSecond)}, the client's CPU µs/call ${range(result.clientCpuUs)}\n`,
    )
  }
} finally {
  for (const server of servers) {
    server.client.close()
    server.stop()
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
}
