/**
 * Redis for tests. `redisUrlForTests()` finds one (REDIS_URL, else a Redis on 127.0.0.1:6379, else a
 * redis-server started here for this process); `startPrivateRedis()` starts one that a test may pause,
 * kill and restart. Tests share a server, so each uses its own key prefix (`testKeyPrefix()`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createConnection, createServer } from 'node:net'

export interface PrivateRedis {
  readonly url: string
  readonly port: number
  /** The current server process (changes on restart). */
  readonly pid: number
  /** SIGSTOP now; SIGCONT after `ms` (or on resume()). Resolves when it has been resumed. */
  pause(ms?: number): Promise<void>
  resume(): void
  /** SIGKILL: gone at once, connections reset, nothing saved. */
  kill(): Promise<void>
  /** Starts a fresh (empty) server on the same port after kill() or stop(). */
  restart(): Promise<void>
  stop(): Promise<void>
}

export interface PrivateRedisOptions {
  /** A configuration file (redis-server takes it before any argument); needed for --sentinel. */
  readonly configFile?: string
  /** More redis-server arguments, such as ['--requirepass', 'secret']. */
  readonly args?: readonly string[]
  /** A password the readiness check must use. */
  readonly password?: string
}

const INSTALL_HINT =
  'The cache tests need Redis: set REDIS_URL, run one on 127.0.0.1:6379, or install redis-server ' +
  '(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) so the tests can start their own.'

const started = new Set<ChildProcess>()
let shared: Promise<string> | undefined

const killStarted = () => {
  for (const child of started) child.kill('SIGKILL')
}
process.once('exit', killStarted)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killStarted()
    process.kill(process.pid, signal)
  })
}

/** A Redis URL for tests that only need a working Redis. */
export function redisUrlForTests(): Promise<string> {
  shared ??= findRedis()
  return shared
}

/** A key prefix of its own for one test, so tests running at once on one Redis never meet. */
export function testKeyPrefix(name = 'test'): string {
  return `kwtest:${name}:${randomUUID().slice(0, 8)}:`
}

async function findRedis(): Promise<string> {
  if (process.env.REDIS_URL) return process.env.REDIS_URL
  if (await answersPing(6379)) return 'redis://127.0.0.1:6379'
  const redis = await startPrivateRedis()
  return redis.url
}

export function redisServerInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  if (!redisServerInstalled()) throw new Error(INSTALL_HINT)
  const port = await freePort()
  let child = await launch(port, options)
  let paused: { resolve: () => void; timer: NodeJS.Timeout | undefined } | undefined

  const resume = () => {
    if (!paused) return
    clearTimeout(paused.timer)
    child.kill('SIGCONT')
    paused.resolve()
    paused = undefined
  }
  const end = async (signal: NodeJS.Signals) => {
    resume()
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill(signal)
      await exited
    }
    started.delete(child)
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid!
    },
    pause(ms) {
      if (paused) throw new Error('The private Redis is already paused.')
      child.kill('SIGSTOP')
      return new Promise<void>((resolve) => {
        paused = { resolve, timer: ms === undefined ? undefined : setTimeout(resume, ms) }
      })
    },
    resume,
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
    async restart() {
      await end('SIGKILL')
      child = await launch(port, options)
    },
  }
}

async function launch(port: number, options: PrivateRedisOptions): Promise<ChildProcess> {
  const args = [
    ...(options.configFile === undefined ? [] : [options.configFile]),
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    ...(options.args ?? []),
  ]
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  started.add(child)
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited at start (${child.exitCode}):\n${output}`)
    if (await answersPing(port, options.password)) return child
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  child.kill('SIGKILL')
  throw new Error(`redis-server did not answer on port ${port}:\n${output}`)
}

/** Whether a Redis on 127.0.0.1:port answers PING (a bare RESP exchange, no client library). */
export function answersPing(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(500, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write(`${password === undefined ? '' : `AUTH ${password}\r\n`}PING\r\n`))
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      if (reply.includes('+PONG')) done(true)
      else if (reply.includes('-')) done(false)
    })
  })
}

export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}
