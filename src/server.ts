/**
 * `npm start`: builds the real parts from configuration, listens on HOST:PORT, and on SIGTERM or
 * SIGINT stops accepting, lets in-flight requests finish and closes everything.
 */
import { resolve } from 'node:path'
import { getHeapStatistics } from 'node:v8'
import { buildApp } from './app.js'
import { closeKeyAccess, composeDependencies } from './compose.js'
import { settleMetadataServerDetection } from './config/google-environment.js'
import { heapBudgetViolation } from './config/heap-budget.js'
import { ConfigError, DEFAULTS, loadConfig } from './config/load-config.js'
import type { Config } from './config/config.js'
import { requestLoggerOptions } from './http/request-logger.js'
import { logStartupWarnings } from './startup-warnings.js'
import { BatchedLineWriter } from './support/stdout-lines.js'

async function main(): Promise<void> {
  let config: Config
  try {
    config = loadConfig()
    const heapShortfall = heapBudgetViolation(config, getHeapStatistics().heap_size_limit)
    if (heapShortfall) throw new ConfigError([heapShortfall])
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`)
      process.exit(78) // EX_CONFIG
    }
    throw error
  }
  settleMetadataServerDetection()
  // A write error reaches the writer's callbacks (the audit trail then fails closed with 503); without
  // a listener the stream's 'error' event would end the process instead.
  process.stdout.on('error', reportStdoutError)
  const stdout = new BatchedLineWriter(process.stdout)
  const deps = await composeDependencies(config, { logger: requestLoggerOptions(config.logLevel, stdout), stdout })
  const app = await buildApp(deps)
  deps.authenticator.useLogger(app.log)
  await deps.authenticator.warm()
  deps.registry.startRefreshing(config.keyRefreshSeconds, app.log)

  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down')
    const forced = setTimeout(() => process.exit(1), 8000)
    forced.unref()
    await app.close()
    deps.authenticator.close()
    // The rate limit's counters are worth nothing now: drop the connection rather than wait on a dead Redis.
    deps.rateLimitRedis?.disconnect()
    await closeKeyAccess(deps)
    stdout.flush()
    clearTimeout(forced)
    // Everything is closed; a handle some library still holds must not keep the process alive.
    setTimeout(() => process.exit(0), 500).unref()
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))

  await app.listen({ host: config.host, port: config.port })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.port
  if (config.mode === 'development' && config.auth.devIssuer) printWelcome(config, port)
  await logStartupWarnings(config, app.log)
}

let stdoutErrorReported = false
function reportStdoutError(error: Error): void {
  if (stdoutErrorReported) return
  stdoutErrorReported = true
  process.stderr.write(
    `${JSON.stringify({ severity: 'CRITICAL', message: 'stdout cannot be written: audit entries fail and key accesses answer 503', error: error.message })}\n`,
  )
}

function printWelcome(config: Config, port: number): void {
  const home =
    (config.home === resolve(DEFAULTS.KEYWRAP_HOME) ? '' : `KEYWRAP_HOME=${config.home} `) +
    (config.configFile ? `KEYWRAP_CONFIG=${resolve(config.configFile)} ` : '')
  process.stderr.write(
    [
      '',
      `keywrap is listening on http://localhost:${port} (development; keys in ${config.home})`,
      'Mint a token and call it:',
      `  export T=$(${home}npx keywrap token --sub alice)`,
      `  curl -s -X POST localhost:${port}/v1/keys/default:generateDataKey -H "authorization: Bearer $T" -H 'content-type: application/json' -d '{}'`,
      `API reference: http://localhost:${port}/docs`,
      '',
    ].join('\n'),
  )
}

main().catch((error: unknown) => {
  process.stderr.write(`keywrap failed to start: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
