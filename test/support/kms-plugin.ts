/**
 * Runs `keywrap kms-plugin` as a real process through bin/keywrap.js and talks to it as the API server
 * does: a gRPC client of v2.KeyManagementService built from the plugin's .proto, over the unix socket.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import assert from 'node:assert/strict'
import { mkdtemp, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { credentials, type ServiceError } from '@grpc/grpc-js'
import { DEV_ISSUER, KMS_PLUGIN_ISSUER } from '../../src/config/config.js'
import { KeyManagementServiceClient, type DecryptRequest, type EncryptResponse, type StatusResponse } from '../../src/kms-plugin/kms-v2-api.js'
import type { KmsStandIn } from './kms-stand-in.js'
import { REPO_ROOT } from './processes.js'

const KEYWRAP_BIN = fileURLToPath(new URL('../../bin/keywrap.js', import.meta.url))

export interface RunningPlugin {
  readonly process: ChildProcessWithoutNullStreams
  readonly socket: string
  stdout(): string
  stderr(): string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env }
  delete base.NODE_TEST_CONTEXT
  delete base.KEYWRAP_CONFIG
  return { ...base, NODE_ENV: 'development', ...env }
}

/** Starts the plugin with `args` (after `kms-plugin`) and waits until it listens on `socket`. */
export async function startPlugin(socket: string, args: string[], env: Record<string, string>): Promise<RunningPlugin> {
  const child = spawn(process.execPath, [KEYWRAP_BIN, 'kms-plugin', '--listen', socket, ...args], { cwd: REPO_ROOT, env: childEnv(env) })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the plugin did not start:\n${stderr}`)), 30_000)
    const check = () => {
      if (!stderr.includes(`listening on unix://${socket}`)) return
      clearTimeout(timer)
      resolve()
    }
    child.stderr.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the plugin exited with ${code}:\n${stderr}`))
    })
  })
  return {
    process: child,
    socket,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode
      const exited = once(child, 'exit')
      child.kill(signal)
      const [code] = (await exited) as [number | null]
      return code
    },
  }
}

/** What the API server calls; each rejects with the gRPC ServiceError (code, details). */
export interface KmsClient {
  status(): Promise<StatusResponse>
  encrypt(plaintext: Buffer, uid?: string): Promise<EncryptResponse>
  decrypt(request: Partial<DecryptRequest> & Pick<DecryptRequest, 'ciphertext' | 'key_id'>): Promise<Buffer>
  close(): void
}

export function kmsClient(socket: string): KmsClient {
  const client = new KeyManagementServiceClient(`unix://${socket}`, credentials.createInsecure()) as unknown as Record<
    string,
    (request: unknown, callback: (error: ServiceError | null, response: any) => void) => void
  > & { close(): void }
  const call = <T>(method: string, request: unknown) =>
    new Promise<T>((resolve, reject) => client[method]!(request, (error, response) => (error ? reject(error) : resolve(response as T))))
  let uids = 0
  return {
    status: () => call<StatusResponse>('Status', {}),
    encrypt: (plaintext, uid = `encrypt-${++uids}`) => call<EncryptResponse>('Encrypt', { plaintext, uid }),
    decrypt: async (request) => (await call<{ plaintext: Buffer }>('Decrypt', { uid: `decrypt-${++uids}`, annotations: {}, ...request })).plaintext,
    close: () => client.close(),
  }
}

/** Polls `check` every 200 ms until it holds or `timeoutMs` passes; resolves with whether it held. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return false
}

/**
 * A fresh KEYWRAP_HOME whose configuration maps `keys` and grants use of `kubernetes` to kube-apiserver@*,
 * as the plugin's own principal (wrap, unwrap) and as the development issuer's tokens an upstream plugin
 * presents (wrap, unwrap, keys.read); the environment to run keywrap on it.
 */
export async function pluginHome(keys: Record<string, string>, env: Record<string, string> = {}): Promise<{ home: string; env: Record<string, string> }> {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-kms-plugin-'))
  const grants = [
    { principals: ['kube-apiserver@*'], keys: ['kubernetes'], operations: ['wrap', 'unwrap'], issuer: KMS_PLUGIN_ISSUER },
    { principals: ['kube-apiserver@*'], keys: ['kubernetes'], operations: ['wrap', 'unwrap', 'keys.read'], issuer: DEV_ISSUER },
  ]
  await writeFile(join(home, 'config.json'), JSON.stringify({ keys, policy: { grants } }))
  return { home, env: { KEYWRAP_HOME: home, KEYWRAP_CONFIG: join(home, 'config.json'), ...env } }
}

/** Encrypts wait on a slow Cloud KMS (the stand-in) when SIGTERM comes: they must finish, the socket go, the plugin exit 0. */
export async function assertSigtermDrains(kms: KmsStandIn, plugin: RunningPlugin): Promise<void> {
  const client = kmsClient(plugin.socket)
  kms.setFaults({ methods: ['Encrypt'], latencyMs: 200 })
  try {
    const inFlight = Array.from({ length: 4 }, () => client.encrypt(Buffer.alloc(32, 1)))
    assert.ok(await eventually(async () => kms.parkedCalls >= 1, 5000), 'Encrypts are in flight')
    assert.equal(await plugin.stop('SIGTERM'), 0)
    for (const response of await Promise.all(inFlight)) assert.ok(response.ciphertext.length > 0)
  } finally {
    kms.clearFaults()
    client.close()
  }
  await assert.rejects(stat(plugin.socket), { code: 'ENOENT' })
}
