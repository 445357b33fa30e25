/**
 * The Redis client of the shared DEK cache: one server from a URL, a Cluster from a list of nodes, or
 * the master of a Sentinel group. Tuned so that Redis trouble costs a request at most one short
 * command timeout: no offline queue (a command fails at once while disconnected), no per-command
 * retries, and a bounded reconnect back-off in the background. With auto-pipelining a command may
 * wait for the pipeline ahead of it before its own timeout starts, so GuardedRedis also bounds each
 * command from the moment it is issued.
 */
import type { ConnectionOptions } from 'node:tls'
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'

export type RedisClient = Redis | Cluster

export interface RedisConnectionOptions {
  /**
   * redis://[user[:password]@]host[:port][/db], or rediss://… for TLS. With `sentinels`, its
   * credentials, db and scheme apply to the master; with `cluster`, it is not used.
   */
  readonly url?: string
  /** Cluster seed nodes, as host:port or redis(s):// URLs (credentials and TLS from the first). */
  readonly cluster?: readonly string[]
  readonly sentinels?: readonly { readonly host: string; readonly port: number }[]
  /** The master's name in the Sentinel configuration; required with `sentinels`. */
  readonly sentinelName?: string
  readonly sentinelPassword?: string
  /** Default 75. */
  readonly commandTimeoutMs?: number
  /** Default 1000. */
  readonly connectTimeoutMs?: number
  /** Ceiling of the reconnect back-off; default 2000. */
  readonly maxReconnectDelayMs?: number
  /** Extra TLS options (a private CA, client certificate) for rediss://. */
  readonly tls?: ConnectionOptions
  /** Connect on the first command instead of at once; default false. */
  readonly lazyConnect?: boolean
  /**
   * Send the commands issued in one turn of the event loop in one write; default false. Under load
   * that is one system call for many cache reads instead of one each (the write was a third of an L2
   * hit's CPU). Not for clients that run scripts or callBuffer(): ioredis 5 mangles those when
   * auto-pipelined (redis/ioredis#1923, #1931), which is why the rate limit's client does without.
   */
  readonly autoPipelining?: boolean
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 75

interface Endpoint {
  readonly host: string
  readonly port: number
  readonly username: string | undefined
  readonly password: string | undefined
  readonly db: number
  readonly tls: boolean
}

export function createRedisClient(options: RedisConnectionOptions): RedisClient {
  const maxDelay = options.maxReconnectDelayMs ?? 2000
  const retryStrategy = (attempt: number) => Math.round(Math.min(maxDelay, 50 * 2 ** Math.min(attempt, 16)) * (0.5 + Math.random() / 2))
  const common = {
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    maxRetriesPerRequest: 0,
    autoResubscribe: false,
    enableAutoPipelining: options.autoPipelining ?? false,
  } satisfies RedisOptions

  if (options.cluster) {
    if (options.cluster.length === 0) throw new Error('The Redis cluster has no nodes.')
    const nodes = options.cluster.map(parseNode)
    const first = nodes[0]!
    const tls = first.tls ? { ...options.tls } : undefined
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: common.enableAutoPipelining,
      lazyConnect: options.lazyConnect ?? false,
      clusterRetryStrategy: retryStrategy,
      slotsRefreshTimeout: common.connectTimeout,
      // TLS certificates name the host, not the address that CLUSTER SLOTS reports
      ...(tls && { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) }),
      redisOptions: {
        ...common,
        ...(first.username !== undefined && { username: first.username }),
        ...(first.password !== undefined && { password: first.password }),
        ...(tls && { tls }),
      },
    }
    return new Cluster(
      nodes.map(({ host, port }) => ({ host, port })),
      clusterOptions,
    )
  }

  const endpoint = options.url === undefined ? undefined : parseRedisUrl(options.url)
  const tls = endpoint?.tls ? { servername: endpoint.host, ...options.tls } : undefined
  const shared: RedisOptions = {
    ...common,
    enableOfflineQueue: false,
    lazyConnect: options.lazyConnect ?? false,
    retryStrategy,
    db: endpoint?.db ?? 0,
    ...(endpoint?.username !== undefined && { username: endpoint.username }),
    ...(endpoint?.password !== undefined && { password: endpoint.password }),
  }

  if (options.sentinels) {
    if (options.sentinels.length === 0) throw new Error('The Redis Sentinel list is empty.')
    if (!options.sentinelName) throw new Error('A Redis Sentinel configuration needs the name of the master (sentinelName).')
    return new Redis({
      ...shared,
      sentinels: options.sentinels.map(({ host, port }) => ({ host, port })),
      name: options.sentinelName,
      sentinelRetryStrategy: retryStrategy,
      ...(options.sentinelPassword !== undefined && { sentinelPassword: options.sentinelPassword }),
      ...(endpoint?.tls && { tls: { ...options.tls }, enableTLSForSentinelMode: true }),
    })
  }

  if (!endpoint) throw new Error('Redis needs a URL, a list of cluster nodes or a list of sentinels.')
  return new Redis({ ...shared, host: endpoint.host, port: endpoint.port, ...(tls && { tls }) })
}

/** Parses redis:// and rediss:// URLs; errors never repeat the URL, which may hold a password. */
export function parseRedisUrl(text: string): Endpoint {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new Error('The Redis URL is not a valid URL (expected redis://[user[:password]@]host[:port][/db]).')
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new Error(`The Redis URL must start with redis:// or rediss://, not ${url.protocol}//.`)
  }
  if (!url.hostname) throw new Error('The Redis URL has no host.')
  const path = url.pathname.replace(/^\//, '')
  if (path !== '' && !/^\d{1,5}$/.test(path)) throw new Error('The Redis URL path must be a database number, such as /0.')
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : 6379,
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: path === '' ? 0 : Number(path),
    tls: url.protocol === 'rediss:',
  }
}

function parseNode(node: string): Endpoint {
  if (/^rediss?:\/\//.test(node)) return parseRedisUrl(node)
  const match = /^(.+):(\d+)$/.exec(node)
  if (!match) throw new Error(`A Redis cluster node must be host:port or a redis:// URL, not "${node}".`)
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]), username: undefined, password: undefined, db: 0, tls: false }
}
