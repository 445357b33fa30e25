/**
 * Serves v2.KeyManagementService on a unix socket: created 0600 (owned by the user running the
 * plugin), a stale socket file removed only when nothing listens on it, and on close the calls in
 * flight finished and the socket removed.
 */
import { connect } from 'node:net'
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { Server, ServerCredentials, type UntypedServiceImplementation } from '@grpc/grpc-js'
import { keyManagementServiceDefinition } from './kms-v2-api.js'

/** Calls still running this long after close() are cancelled. */
const DRAIN_TIMEOUT_MS = 10_000

export interface PluginServer {
  readonly path: string
  /** Stops accepting, lets the calls in flight finish, removes the socket. */
  close(): Promise<void>
}

export async function servePlugin(path: string, implementation: UntypedServiceImplementation): Promise<PluginServer> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  await removeStaleSocket(path)
  const server = new Server()
  server.addService(keyManagementServiceDefinition, implementation)
  // The socket is created under this umask, so it is never open to others, even before the chmod.
  const umask = process.umask(0o177)
  try {
    await new Promise<number>((resolve, reject) =>
      server.bindAsync(`unix://${path}`, ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
    )
  } finally {
    process.umask(umask)
  }
  await chmod(path, 0o600)
  const { ino } = await lstat(path)
  return {
    path,
    async close() {
      await new Promise<void>((resolve) => {
        const forced = setTimeout(() => {
          server.forceShutdown()
          resolve()
        }, DRAIN_TIMEOUT_MS)
        forced.unref()
        server.tryShutdown(() => {
          clearTimeout(forced)
          resolve()
        })
      })
      // Only our own socket: a plugin started meanwhile may already listen on this path.
      const current = await lstat(path).catch(() => undefined)
      if (current?.isSocket() && current.ino === ino) await unlink(path).catch(() => undefined)
    },
  }
}

/** A socket file nothing listens on is left by a plugin that died; anything else at PATH is refused. */
async function removeStaleSocket(path: string): Promise<void> {
  const existing = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined
    throw error
  })
  if (!existing) return
  if (!existing.isSocket()) throw new Error(`${path} exists and is not a socket; remove it or choose another --listen path`)
  if (await isListening(path)) throw new Error(`another process listens on ${path}`)
  await unlink(path)
}

function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
