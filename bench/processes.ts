/** Starts the processes under test: keywrap as production runs it (compiled), and the baseline. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../', import.meta.url))

export interface BenchProcess {
  readonly url: string
  readonly pid: number
  readonly startedToReadyMs: number
  rssBytes(): Promise<number>
  /** CPU time (user + system, all threads) the process has used so far, in seconds. */
  cpuSeconds(): Promise<number>
  stop(): Promise<void>
}

/**
 * keywrap from dist/ (npm run build). Its stdout (request logs and audit) is a pipe, as on Cloud Run,
 * drained by a `cat` of its own: the load generator runs in this process, and draining tens of MB/s
 * of log lines here would slow the load rather than keywrap.
 */
/**
 * The environment keywrap runs with in the bench: development keys, the image's heap settings (plus
 * BENCH_EXTRA_NODE_OPTIONS, e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile every process the bench
 * starts), then `env`.
 */
export async function keywrapEnvironment(env: Record<string, string>): Promise<NodeJS.ProcessEnv> {
  const nodeOptions = [await productionNodeOptions(), process.env.BENCH_EXTRA_NODE_OPTIONS].filter(Boolean).join(' ')
  return { ...process.env, NODE_ENV: 'development', PORT: '0', NODE_OPTIONS: nodeOptions, ...env }
}

/**
 * `dist`: another build's output directory inside the repository, for an A/B (bench/http-cpu.ts); or a
 * server script of its own (bench/minimal-service.ts), run with tsx.
 */
export async function startKeywrap(env: Record<string, string>, dist = 'dist'): Promise<BenchProcess> {
  if (dist.endsWith('.ts')) return startHttpServer(dist, await keywrapEnvironment(env), ['--import', 'tsx'])
  return startHttpServer(`${dist}/src/server.js`, await keywrapEnvironment(env))
}

/** The cold-start floor (bench/bare-start-server.mjs), started and timed exactly as keywrap is, with the same NODE_OPTIONS. */
export async function startBareForColdStart(): Promise<BenchProcess> {
  return startHttpServer('bench/bare-start-server.mjs', await keywrapEnvironment({}))
}

async function startHttpServer(script: string, environment: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<BenchProcess> {
  const started = performance.now()
  const drain = spawn('cat', [], { stdio: ['pipe', 'ignore', 'ignore'] })
  const child = spawn(process.execPath, [...nodeArgs, script], {
    cwd: ROOT,
    env: environment,
    stdio: ['ignore', drain.stdin!, 'pipe'],
  })
  // keywrap holds the pipe's write end now; cat ends when keywrap does.
  drain.stdin!.destroy()
  const port = await waitFor(child, /listening on http:\/\/localhost:(\d+)/)
  const url = `http://127.0.0.1:${port}`
  // Cold start: process start until /readyz answers 200.
  for (;;) {
    const response = await fetch(`${url}/readyz`).catch(() => undefined)
    if (response?.status === 200) break
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return handle(child, url, performance.now() - started)
}

/** The KMS plugin's floor: a bare gRPC server of the same API. */
export const BARE_PLUGIN = 'bench/kms-plugin-baseline.ts'
/** The simplest audited plugin, to set beside keywrap's. */
export const MINIMAL_PLUGIN = 'bench/kms-plugin-minimal.ts'

/**
 * `keywrap kms-plugin ARGS` from dist/ (compiled, as the image runs it), or `script` (BARE_PLUGIN,
 * MINIMAL_PLUGIN) with tsx; each ready once it listens on `socket`. Stdout (the audit trail) drained by a `cat`.
 */
export async function startKmsPluginProcess(socket: string, args: string[], env: Record<string, string>, script?: string): Promise<BenchProcess> {
  const started = performance.now()
  const drain = spawn('cat', [], { stdio: ['pipe', 'ignore', 'ignore'] })
  const command = script ? ['--import', 'tsx', script, socket] : ['dist/src/cli/main.js', 'kms-plugin', '--listen', socket, ...args]
  const child = spawn(process.execPath, command, { cwd: ROOT, env: await keywrapEnvironment(env), stdio: ['ignore', drain.stdin!, 'pipe'] })
  drain.stdin!.destroy()
  await waitFor(child, /listening on unix:\/\/\S+()/)
  return handle(child, `unix://${socket}`, performance.now() - started)
}

/** The heap settings the image runs with (the Dockerfile's NODE_OPTIONS). */
async function productionNodeOptions(): Promise<string> {
  const dockerfile = await readFile(new URL('Dockerfile', `file://${ROOT}`), 'utf8')
  const options = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(dockerfile)?.[1]
  if (options === undefined) throw new Error('The Dockerfile sets no NODE_OPTIONS.')
  return options
}

export async function startBaseline(): Promise<BenchProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/baseline-server.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  const port = await waitFor(child, /listening (\d+)/, 'stdout')
  return handle(child, `http://127.0.0.1:${port}`, 0)
}

function handle(child: ChildProcess, url: string, startedToReadyMs: number): BenchProcess {
  return {
    url,
    pid: child.pid!,
    startedToReadyMs,
    async rssBytes() {
      const { readFile } = await import('node:fs/promises')
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
    },
    async cpuSeconds() {
      const { readFile } = await import('node:fs/promises')
      // Fields 14 and 15 of /proc/PID/stat (after the parenthesised name): utime and stime, in clock ticks of 1/100 s.
      const fields = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
      return (Number(fields[11]) + Number(fields[12])) / 100
    },
    async stop() {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    },
  }
}

async function waitFor(child: ChildProcess, pattern: RegExp, stream: 'stdout' | 'stderr' = 'stderr'): Promise<number> {
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within 30 s:\n${output}`)), 30_000)
    child[stream]!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = pattern.exec(output)
      if (match) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    })
    child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)))
  })
}

/**
 * bench/kms-client-alone.ts (the Cloud KMS client alone against the stand-in at `kmsAddress`, in a
 * process of its own), run once its channel is up; its result line. The stand-in's faults are the caller's.
 */
export async function kmsClientAlone(kmsAddress: string, keyName: string, mode: 'rewrap' | 'encrypt', count: number, concurrency: number): Promise<string> {
  // With keywrap's environment (the image's NODE_OPTIONS: its young generation sets much of a call's CPU).
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/kms-client-alone.ts', kmsAddress, keyName, mode, String(count), String(concurrency)], {
    cwd: ROOT,
    env: await keywrapEnvironment({}),
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit')
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  try {
    const ended = async () => {
      child.kill()
      return `bench/kms-client-alone.ts ended (exit ${(await exited)[0]})`
    }
    if ((await lines.next()).value !== 'ready') throw new Error(`${await ended()} before it was ready`)
    child.stdin!.write('go\n')
    const result = (await lines.next()).value
    const numbers = typeof result === 'string' ? result.split(' ').map(Number) : []
    if (numbers.length === 0 || !numbers.every((value) => Number.isFinite(value) && value > 0)) throw new Error(`${await ended()} without its result`)
    return result!
  } finally {
    child.kill()
  }
}
