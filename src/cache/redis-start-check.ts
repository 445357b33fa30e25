/**
 * At start, whether the shared cache's Redis answers. The cache itself never fails a call over Redis
 * (it reads trouble as misses and reconnects in the background), so without this check an unreachable
 * REDIS_URL would go unnoticed: one connection, one PING, and a warning line naming the endpoint.
 */
import { createRedisClient, type RedisConnectionOptions } from './redis-connection.js'

/** Where the connection goes, without credentials: fit for a log line. */
export function describeRedisEndpoint(connection: RedisConnectionOptions): string {
  if (connection.cluster) return `the Redis Cluster at ${connection.cluster.map(withoutCredentials).join(', ')}`
  if (connection.sentinels) {
    return `the Redis master "${connection.sentinelName}" of the sentinels at ${connection.sentinels.map((s) => `${s.host}:${s.port}`).join(', ')}`
  }
  return `Redis at ${withoutCredentials(connection.url ?? 'redis://127.0.0.1:6379')}`
}

/** Resolves with why Redis cannot be reached within `timeoutMs`, or undefined when it answers PING. */
export async function redisUnreachableReason(connection: RedisConnectionOptions, timeoutMs: number): Promise<string | undefined> {
  const client = createRedisClient({ ...connection, lazyConnect: true, connectTimeoutMs: timeoutMs, commandTimeoutMs: timeoutMs })
  let lastError: Error | undefined
  client.on('error', (error: Error) => (lastError = error))
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(lastError ? reasonOf(lastError) : `no answer within ${timeoutMs} ms`), timeoutMs)
  })
  try {
    const answered = client.connect().then(
      () => client.ping().then(() => undefined),
      (error: unknown) => reasonOf(lastError ?? error),
    )
    return await Promise.race([answered.catch((error: unknown) => reasonOf(error)), timedOut])
  } finally {
    clearTimeout(timer)
    client.disconnect()
  }
}

function reasonOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code
  const message = error instanceof Error ? error.message : String(error)
  return code && !message.includes(code) ? `${code}: ${message}` : message
}

function withoutCredentials(endpoint: string): string {
  if (!/^rediss?:\/\//.test(endpoint)) return endpoint
  try {
    const url = new URL(endpoint)
    url.username = ''
    url.password = ''
    return url.toString().replace(/\/$/, '')
  } catch {
    return '(an unparsable URL)'
  }
}
