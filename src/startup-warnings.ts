/**
 * What the server warns about once it is up, each in one log line: settings it does not read (likely
 * misspelled) and a shared cache whose Redis does not answer. Neither stops the service.
 */
import type { Config } from './config/config.js'
import { unknownSettingsWarning } from './config/unknown-settings.js'
import { redisConnection } from './compose.js'

export interface WarningLog {
  warn(details: object, message: string): void
}

const REDIS_CHECK_TIMEOUT_MS = 2000

export async function logStartupWarnings(config: Config, log: WarningLog): Promise<void> {
  const unknown = unknownSettingsWarning()
  if (unknown) log.warn({}, unknown)
  if (!config.redis) return
  // Loaded only here: ioredis costs a start without Redis ~40 ms of module loading.
  const { describeRedisEndpoint, redisUnreachableReason } = await import('./cache/redis-start-check.js')
  const connection = redisConnection(config.redis)
  const reason = await redisUnreachableReason(connection, REDIS_CHECK_TIMEOUT_MS)
  if (reason) {
    log.warn(
      {},
      `${describeRedisEndpoint(connection)} cannot be reached (${reason}); until it answers, shared-cache reads are misses and each instance caches on its own`,
    )
  }
}
