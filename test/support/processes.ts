/** Runs keywrap's own entry points (the server and the CLI) as child processes, as a user would. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface RunningServer {
  readonly process: ChildProcessWithoutNullStreams
  readonly baseUrl: string
  stdout(): string
  stderr(): string
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; elapsedMs: number }>
}

/**
 * The environment of a user's shell: without the test runner's context, and without the npm_config_*
 * of whatever npm or npx runs the tests (under `npx -c` they would make a child's own `npm start` or
 * `npx keywrap` a usage error).
 */
export function userEnv(): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_config_')))
  delete base.NODE_TEST_CONTEXT
  delete base.KEYWRAP_CONFIG
  return base
}

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { ...userEnv(), NODE_ENV: 'development', ...env }
}

export interface StartOptions {
  /** A file descriptor for the server's stdout instead of a pipe (e.g. /dev/full). */
  readonly stdoutFd?: number
  /** Another way to start it, e.g. ['npm', 'start']; `process` is then that command's process. */
  readonly command?: readonly [string, ...string[]]
  /** Default: the repository. */
  readonly cwd?: string
}

/** Starts `node --import tsx src/server.ts` (what `npm start` runs) and waits for its welcome line. */
export async function startServer(env: Record<string, string>, options: StartOptions = {}): Promise<RunningServer> {
  const [file, ...args] = options.command ?? [process.execPath, '--import', 'tsx', 'src/server.ts']
  const child = spawn(file, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: childEnv({ PORT: '0', ...env }),
    stdio: ['pipe', options.stdoutFd ?? 'pipe', 'pipe'],
  }) as ChildProcessWithoutNullStreams
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const port = await new Promise<number>((resolve, reject) => {
    // A server that has not started by then is killed, so that it cannot keep the test file running.
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server did not start within 60 s:\n${stderr}`))
    }, 60_000)
    const check = () => {
      const match = /listening on http:\/\/localhost:(\d+)/.exec(stderr)
      if (match) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    }
    child.stderr.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${stderr}`))
    })
  })
  return {
    process: child,
    baseUrl: `http://127.0.0.1:${port}`,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      const started = Date.now()
      if (child.exitCode !== null) return { code: child.exitCode, elapsedMs: 0 }
      const exited = once(child, 'exit')
      child.kill(signal)
      const [code] = (await exited) as [number | null]
      return { code, elapsedMs: Date.now() - started }
    },
  }
}

/** Runs `keywrap ARGS…` through the package's bin script; resolves with its exit code and output. */
export async function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode([fileURLToPath(new URL('../../bin/keywrap.js', import.meta.url)), ...args], env)
}

export async function runNode(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: childEnv(env) })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}

/** POSTs JSON to a running server with a bearer token; the status and the parsed body. */
export async function post(server: RunningServer, path: string, token: string, body: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${server.baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: response.status, json: await response.json() }
}
