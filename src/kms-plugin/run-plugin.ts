/**
 * `npx keywrap kms-plugin`: builds the backend (keywrap's own keys, or an upstream keywrap service),
 * serves the KMS v2 API on the unix socket until SIGTERM or SIGINT, then finishes the calls in flight,
 * removes the socket and closes the backend.
 */
import { once } from 'node:events'
import { UsageError } from '../cli/command.js'
import { closeKeyAccess, composeKeyAccess } from '../compose.js'
import { KMS_PLUGIN_ISSUER } from '../config/config.js'
import { metadataServerHost, settleMetadataServerDetection } from '../config/google-environment.js'
import { loadConfig } from '../config/load-config.js'
import { FileBearerToken, GoogleIdToken } from './bearer-tokens.js'
import type { KeyBackend } from './key-backend.js'
import { KmsV2Service } from './kms-v2-service.js'
import { LocalKeyBackend } from './local-backend.js'
import { servePlugin } from './plugin-server.js'
import { UpstreamKeyBackend } from './upstream-backend.js'

export interface PluginOptions {
  readonly listen: string
  readonly alias: string
  readonly principal: string
  /** undefined: twice the key refresh interval. */
  readonly graceSeconds: number | undefined
  /** Forward to a keywrap service instead of using keywrap's own keys here. */
  readonly upstream: { readonly url: string; readonly tokenFile: string | undefined; readonly refreshSeconds: number } | undefined
}

export async function runPlugin(options: PluginOptions): Promise<void> {
  settleMetadataServerDetection()
  const { backend, refreshSeconds } = options.upstream ? await upstreamBackend(options, options.upstream) : await localBackend(options)
  const service = new KmsV2Service(backend, { graceMs: (options.graceSeconds ?? 2 * refreshSeconds) * 1000, log: logLine })
  let server
  try {
    server = await servePlugin(options.listen, service.implementation())
  } catch (error) {
    await backend.close()
    throw error
  }
  process.stderr.write(`keywrap kms-plugin listening on unix://${options.listen} (key "${options.alias}", ${describeCaller(options)})\n`)
  const signal = await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')])
  logLine('shutting down', { signal: signal[0] ?? 'signal' })
  await server.close()
  await backend.close()
}

async function localBackend(options: PluginOptions): Promise<{ backend: KeyBackend; refreshSeconds: number }> {
  const config = loadConfig()
  if (!config.keys[options.alias]) {
    throw new UsageError(`no key has the alias "${options.alias}" (configured: ${Object.keys(config.keys).join(', ')})`)
  }
  // The audit entries of the calls read in one event-loop turn go out in one write (audit/turn-window.ts).
  // No metrics are given: the plugin serves no /metrics, and counting for nobody cost ~6 % of a cached
  // Decrypt's CPU (109 → 102.5 µs, bench/kms-plugin-cpu.ts).
  const deps = await composeKeyAccess(config, { auditBatchWithinTurn: true })
  let backend
  try {
    backend = new LocalKeyBackend(deps, options.alias, { id: options.principal, issuer: KMS_PLUGIN_ISSUER })
  } catch (error) {
    await closeKeyAccess(deps)
    throw error
  }
  deps.registry.startRefreshing(config.keyRefreshSeconds, {
    debug: () => undefined,
    info: (details, message) => logLine(message, details),
    warn: (details, message) => logLine(message, details),
    error: (details, message) => logLine(message, details),
  })
  return { backend, refreshSeconds: config.keyRefreshSeconds }
}

async function upstreamBackend(
  options: PluginOptions,
  upstream: NonNullable<PluginOptions['upstream']>,
): Promise<{ backend: KeyBackend; refreshSeconds: number }> {
  const token = upstream.tokenFile ? new FileBearerToken(upstream.tokenFile) : new GoogleIdToken(metadataServerHost(), upstream.url)
  const backend = new UpstreamKeyBackend({ url: upstream.url, alias: options.alias, token, refreshSeconds: upstream.refreshSeconds, log: logLine })
  await backend.start()
  return { backend, refreshSeconds: upstream.refreshSeconds }
}

function describeCaller(options: PluginOptions): string {
  if (!options.upstream) return `principal ${options.principal} of ${KMS_PLUGIN_ISSUER}`
  return `forwarding to ${options.upstream.url} with ${options.upstream.tokenFile ? `the token in ${options.upstream.tokenFile}` : 'a Google ID token'}`
}

function logLine(message: string, details: object): void {
  process.stderr.write(`${JSON.stringify({ severity: 'WARNING', message, ...details })}\n`)
}
