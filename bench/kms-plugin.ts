/**
 * The Kubernetes KMS plugin beside a bare gRPC server of the same API (bench/kms-plugin-baseline.ts),
 * both on unix sockets, driven by one gRPC client from the .proto in this process, as an API server
 * drives its plugin. Closed loop: `concurrency` calls outstanding until `count` are done.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { credentials, type ServiceError } from '@grpc/grpc-js'
import { KMS_PLUGIN_ISSUER } from '../src/config/config.js'
import { KeyManagementServiceClient, type DecryptRequest, type EncryptResponse } from '../src/kms-plugin/kms-v2-api.js'
import type { KmsStandIn } from '../test/support/kms-stand-in.js'
import { BARE_PLUGIN, kmsClientAlone, MINIMAL_PLUGIN, startKmsPluginProcess, type BenchProcess } from './processes.js'

export interface KmsPluginBench {
  readonly home: string
  readonly kms: KmsStandIn
  readonly kmsKey: string
  readonly kmsAddress: string
  readonly quick: boolean
}

interface Calls {
  readonly perSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  readonly elapsedMs: number
  /** The server process's CPU time (user + system) per call, in µs; steadier than calls/s on a busy machine. */
  readonly cpuUsPerCall?: number
}

export type Client = Record<string, (request: unknown, callback: (error: ServiceError | null, response: any) => void) => void> & { close(): void }

function clientOf(process: BenchProcess): Client {
  return new KeyManagementServiceClient(process.url, credentials.createInsecure()) as unknown as Client
}

function call(client: Client, method: string, request: unknown): Promise<any> {
  return new Promise((resolve, reject) => client[method]!(request, (error, response) => (error ? reject(error) : resolve(response))))
}

async function calls(
  client: Client,
  method: string,
  count: number,
  concurrency: number,
  request: (index: number) => unknown,
): Promise<Calls & { latencies: number[] }> {
  const latencies: number[] = []
  let next = 0
  let errors = 0
  const started = performance.now()
  const worker = async () => {
    while (next < count) {
      const index = next++
      const sent = performance.now()
      await call(client, method, request(index)).catch(() => errors++)
      latencies.push(performance.now() - sent)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsedMs = performance.now() - started
  return { ...summary(latencies, elapsedMs, errors), latencies }
}

function summary(latencies: number[], elapsedMs: number, errors: number): Calls {
  const sorted = [...latencies].sort((a, b) => a - b)
  const at = (q: number) => round2(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!)
  return { perSecond: Math.round((latencies.length / elapsedMs) * 1000), p50Ms: at(0.5), p99Ms: at(0.99), errors, elapsedMs: Math.round(elapsedMs) }
}

interface Served {
  readonly client: Client
  readonly process: BenchProcess
}

/**
 * ABBA rounds of the plugin and the bare server, pooled: throughput of the totals, p50/p99 of all calls,
 * CPU per call of the totals; and the range of the rounds' throughput ratios, to show the machine's noise.
 */
async function besideBaseline(
  plugin: Served,
  bare: Served,
  rounds: number,
  run: (client: Client) => Promise<Calls & { latencies: number[] }>,
): Promise<{ plugin: Calls; bare: Calls; roundRatios: number[] }> {
  const roundRatios: number[] = []
  const pooled = {
    plugin: { latencies: [] as number[], ms: 0, errors: 0, cpuSeconds: 0 },
    bare: { latencies: [] as number[], ms: 0, errors: 0, cpuSeconds: 0 },
  }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (['plugin', 'bare'] as const) : (['bare', 'plugin'] as const)
    const perSecond = { plugin: 0, bare: 0 }
    for (const which of order) {
      const served = which === 'plugin' ? plugin : bare
      const cpuBefore = await served.process.cpuSeconds()
      const result = await run(served.client)
      pooled[which].cpuSeconds += (await served.process.cpuSeconds()) - cpuBefore
      pooled[which].latencies.push(...result.latencies)
      pooled[which].ms += result.elapsedMs
      pooled[which].errors += result.errors
      perSecond[which] = result.perSecond
    }
    roundRatios.push(round2(perSecond.plugin / perSecond.bare))
  }
  const pooledSummary = (which: 'plugin' | 'bare') => {
    const { latencies, ms, errors, cpuSeconds } = pooled[which]
    return { ...summary(latencies, ms, errors), cpuUsPerCall: Math.round((cpuSeconds * 1e6) / latencies.length) }
  }
  return { plugin: pooledSummary('plugin'), bare: pooledSummary('bare'), roundRatios }
}

const SEED = Buffer.alloc(32, 7)

/** A Decrypt of a DEK the server behind `encryptWith` has just encrypted (cached from then on). */
export async function cachedDecryptRequest(encryptWith: Client): Promise<DecryptRequest> {
  const encrypted: EncryptResponse = await call(encryptWith, 'Encrypt', { plaintext: SEED, uid: 'bench' })
  return { ciphertext: encrypted.ciphertext, key_id: encrypted.key_id, annotations: encrypted.annotations, uid: 'bench-decrypt' }
}

/** The simplest audited plugin (MINIMAL_PLUGIN) in the same rounds as the first row, beside the same bare server. */
async function minimalBesideBaseline(home: string, bare: Served, rounds: number): Promise<string> {
  const minimal = await startKmsPluginProcess(join(home, 'kms-minimal.sock'), [], {}, MINIMAL_PLUGIN)
  const client = clientOf(minimal)
  try {
    const decrypt = await cachedDecryptRequest(client)
    await calls(client, 'Decrypt', 500, 16, () => decrypt)
    const result = await besideBaseline({ client, process: minimal }, bare, rounds, (served) => calls(served, 'Decrypt', 4000, 16, () => decrypt))
    return (
      `- The simplest audited plugin (bench/kms-plugin-minimal.ts: a Map of DEKs, a chained JSON line a call, no policy, key versions, checkpoints or metrics), ` +
      `the first row's calls beside the same bare server: ${round2(result.plugin.perSecond / result.bare.perSecond)} × bare ` +
      `(rounds ${Math.min(...result.roundRatios)}–${Math.max(...result.roundRatios)}), p99 ${result.plugin.p99Ms} against ${result.bare.p99Ms} ms, ` +
      `CPU ${result.plugin.cpuUsPerCall} against ${result.bare.cpuUsPerCall} µs a call`
    )
  } finally {
    client.close()
    await minimal.stop()
  }
}

export async function kmsPluginScenarios(bench: KmsPluginBench): Promise<string> {
  const { home, kms, quick } = bench
  const grants = [{ principals: ['kube-apiserver@*'], keys: ['kubernetes*'], operations: ['wrap', 'unwrap'], issuer: KMS_PLUGIN_ISSUER }]
  await writeFile(
    join(home, 'kms-plugin.json'),
    JSON.stringify({ keys: { kubernetes: 'local://kubernetes', 'kubernetes-kms': `gcp-kms://${bench.kmsKey}` }, policy: { grants } }),
  )
  const env = { KEYWRAP_HOME: home, KEYWRAP_CONFIG: join(home, 'kms-plugin.json'), KMS_EMULATOR_HOST: bench.kmsAddress, GOOGLE_CLOUD_PROJECT: 'bench' }
  const rounds = quick ? 1 : 8
  const rows: string[] = []
  const facts: string[] = []
  const row = (scenario: string, result: { plugin: Calls; bare: Calls; roundRatios: number[] }, target: string) =>
    rows.push(
      `| ${scenario} | ${result.plugin.perSecond} | ${result.bare.perSecond} | ${round2(result.plugin.perSecond / result.bare.perSecond)} ` +
        `(rounds ${Math.min(...result.roundRatios)}–${Math.max(...result.roundRatios)}) | ` +
        `${result.plugin.p50Ms} | ${result.bare.p50Ms} | ${result.plugin.p99Ms} | ${result.bare.p99Ms} | ${result.plugin.cpuUsPerCall} | ${result.bare.cpuUsPerCall} | ` +
        `${result.plugin.errors + result.bare.errors} | ${target} |`,
    )

  // Cached DEKs (L1 hits) on the local keyring, beside the bare server.
  const plugin = await startKmsPluginProcess(join(home, 'kms-plugin.sock'), ['--alias', 'kubernetes'], env)
  const bare = await startKmsPluginProcess(join(home, 'kms-bare.sock'), [], {}, BARE_PLUGIN)
  const pluginClient = clientOf(plugin)
  const bareClient = clientOf(bare)
  try {
    const decrypt = await cachedDecryptRequest(pluginClient)
    const served = { client: pluginClient, process: plugin }
    const bareServed = { client: bareClient, process: bare }
    // Warm both (connections, JIT) before measuring.
    for (const client of [pluginClient, bareClient]) await calls(client, 'Decrypt', 500, 16, () => decrypt)
    row(
      'Decrypt, cached DEK, 16 concurrent (4,000 calls a round)',
      await besideBaseline(served, bareServed, rounds, (client) => calls(client, 'Decrypt', 4000, 16, () => decrypt)),
      '≥ 0.8 × bare; p99 ≤ 1.5 × bare',
    )
    row(
      'Decrypt, cached DEK, one at a time (1,000 calls a round)',
      await besideBaseline(served, bareServed, rounds, (client) => calls(client, 'Decrypt', 1000, 1, () => decrypt)),
      'p50 within 0.3 ms of bare',
    )
    row(
      'Status, one at a time (200 calls a round)',
      await besideBaseline(served, bareServed, rounds, (client) => calls(client, 'Status', 200, 1, () => ({}))),
      '',
    )
    facts.push(await minimalBesideBaseline(home, bareServed, rounds))
  } finally {
    pluginClient.close()
    bareClient.close()
    await plugin.stop()
    await bare.stop()
  }

  // Cloud KMS (the stand-in) at 50 ms: Encrypt, then 1,000 distinct DEKs decrypted by a plugin just started.
  const kmsArgs = ['--alias', 'kubernetes-kms']
  const first = await startKmsPluginProcess(join(home, 'kms-plugin-gcp.sock'), kmsArgs, env)
  const firstClient = clientOf(first)
  let ciphertexts: EncryptResponse[]
  try {
    kms.setFaults({ latencyMs: 50 })
    // Warm first, as the Decrypt rows are: a just-started plugin's first calls (its JIT, its channel
    // to KMS) are not what an API server writing Secrets meets.
    await calls(firstClient, 'Encrypt', 64, 16, (index) => ({ plaintext: SEED, uid: `warm-${index}` }))
    const encrypts = await calls(firstClient, 'Encrypt', quick ? 64 : 320, 16, (index) => ({ plaintext: SEED, uid: `encrypt-${index}` }))
    rows.push(
      `| Encrypt, Cloud KMS stand-in at 50 ms, 16 concurrent (${quick ? 64 : 320} calls) | ${encrypts.perSecond} | | | ${encrypts.p50Ms} | | ${encrypts.p99Ms} | | | | ${encrypts.errors} | p99 ≤ 100 ms |`,
    )
    // Beside it, the simplest thing that makes the same Cloud KMS calls: the KMS client alone, no plugin.
    const [aloneP50, aloneP99] = (await kmsClientAlone(bench.kmsAddress, bench.kmsKey, 'encrypt', quick ? 64 : 320, 16)).split(' ').map(Number)
    facts.push(
      `- The same Encrypts made by the Cloud KMS client alone (bench/kms-client-alone.ts: no plugin, a process of its own), 16 concurrent against the stand-in at 50 ms: ` +
        `p50 ${round2(aloneP50!)} ms, p99 ${round2(aloneP99!)} ms`,
    )
    kms.clearFaults()
    ciphertexts = []
    for (let index = 0; index < 1000; index += 16) {
      const batch = Array.from({ length: Math.min(16, 1000 - index) }, (_, offset) =>
        call(firstClient, 'Encrypt', { plaintext: Buffer.alloc(32, (index + offset) % 256), uid: `seed-${index + offset}` }),
      )
      ciphertexts.push(...(await Promise.all(batch)))
    }
  } finally {
    kms.clearFaults()
    firstClient.close()
    await first.stop()
  }
  const fresh = await startKmsPluginProcess(join(home, 'kms-plugin-gcp.sock'), kmsArgs, env)
  const freshClient = clientOf(fresh)
  try {
    kms.setFaults({ latencyMs: 50 })
    kms.resetCounters()
    const cold = await calls(freshClient, 'Decrypt', ciphertexts.length, 16, (index) => ({ ...ciphertexts[index], uid: `cold-${index}` }))
    facts.push(
      `- 1,000 Decrypts of distinct DEKs by a plugin just started (nothing cached), Cloud KMS stand-in at 50 ms, 16 concurrent: ` +
        `${cold.elapsedMs} ms in all (target ≤ 4,500 ms), ${kms.calls.Decrypt} KMS Decrypt calls (target 1,000), p50 ${cold.p50Ms} ms, p99 ${cold.p99Ms} ms, ${cold.errors} errors`,
    )
  } finally {
    kms.clearFaults()
    freshClient.close()
    await fresh.stop()
  }
  return [
    `Kubernetes KMS plugin (keywrap kms-plugin, compiled) beside a bare gRPC server of the same API, both on unix sockets, one gRPC client from the .proto; ` +
      `the rows beside the bare server are ${rounds} ABBA round${rounds > 1 ? 's' : ''} of each, pooled`,
    '',
    '| scenario | calls/s | bare calls/s | × bare | p50 ms | bare p50 ms | p99 ms | bare p99 ms | CPU µs/call | bare CPU µs/call | errors | target |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows,
    '',
    ...facts,
  ].join('\n')
}

function round2(value: number): number {
  return Math.round(value * 100) / 100
}
