/** `keywrap kms-plugin`: the Kubernetes KMS v2 plugin (docs/kubernetes.md). */
import { hostname } from 'node:os'
import { isAbsolute } from 'node:path'
import { parseCommandLine, UsageError, type Command } from './command.js'
import { isLoopback } from '../support/loopback.js'

export const kmsPluginCommand: Command = {
  name: 'kms-plugin',
  summary: 'serve the Kubernetes KMS v2 plugin API on a unix socket',
  arguments: '--listen PATH --alias ALIAS [--principal NAME | --upstream URL [--token-file FILE] [--refresh SECONDS]] [--grace SECONDS]',
  help: `  --listen PATH       the unix socket the API server's EncryptionConfiguration names (unix://PATH);
                      created 0600, a stale socket file nothing listens on is replaced
  --alias ALIAS       the configured key whose KEK wraps the API server's DEK seeds
  --principal NAME    who the plugin acts as, of issuer urn:keywrap:kms-plugin; it needs grants of
                      wrap and unwrap on ALIAS like any caller (default kube-apiserver@HOSTNAME)
  --grace SECONDS     Status stops answering "ok" when the key has not been read from its provider
                      for this long (default twice the key refresh interval)
  --upstream URL      forward Encrypt and Decrypt to the keywrap service at URL (its policy and audit
                      trail); the caller needs wrap, unwrap and keys.read on ALIAS there
  --token-file FILE   with --upstream: the bearer token, re-read when the file changes; without it,
                      a Google ID token for audience URL from the metadata server
  --refresh SECONDS   with --upstream: how often the key is read from the service (default 60)

Without --upstream, uses keywrap's configuration (KEYWRAP_CONFIG, KEYWRAP_HOME, the cache, the audit
sink, KEYWRAP_KEY_REFRESH_SECONDS) like the server. On SIGTERM the calls in flight finish, the socket
is removed and the plugin exits 0. See docs/kubernetes.md.`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      listen: { type: 'string' },
      alias: { type: 'string' },
      principal: { type: 'string' },
      grace: { type: 'string' },
      upstream: { type: 'string' },
      'token-file': { type: 'string' },
      refresh: { type: 'string' },
    })
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`)
    if (!values.listen) throw new UsageError('--listen PATH is required')
    if (!isAbsolute(values.listen)) throw new UsageError('--listen must be an absolute path')
    if (!values.alias) throw new UsageError('--alias ALIAS is required')
    if (values.upstream !== undefined && values.principal !== undefined)
      throw new UsageError('--principal goes without --upstream (upstream, the token names the caller)')
    const principal = values.principal ?? `kube-apiserver@${hostname()}`
    if (!principal || principal.length > 256) throw new UsageError('--principal must be 1 to 256 characters')
    if (values.upstream === undefined && (values['token-file'] !== undefined || values.refresh !== undefined)) {
      throw new UsageError('--token-file and --refresh go with --upstream')
    }
    // Loaded here, not with the command list: gRPC and the plugin's server are most of the CLI's memory.
    const { runPlugin } = await import('../kms-plugin/run-plugin.js')
    await runPlugin({
      listen: values.listen,
      alias: values.alias,
      principal,
      graceSeconds: values.grace === undefined ? undefined : seconds('--grace', values.grace),
      upstream: values.upstream === undefined ? undefined : upstreamOf(values.upstream, values['token-file'], values.refresh),
    })
    // Everything is closed; a handle some library still holds must not keep the process alive.
    setTimeout(() => process.exit(), 500).unref()
  },
}

function upstreamOf(url: string, tokenFile: string | undefined, refresh: string | undefined) {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UsageError(`--upstream must be a URL, not "${url}"`)
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopback(parsed.hostname))) {
    throw new UsageError('--upstream must be https:// (http:// only to a loopback address)')
  }
  if (parsed.search || parsed.hash || parsed.username) throw new UsageError("--upstream takes the service's base URL, without query, fragment or credentials")
  return { url: parsed.href.replace(/\/+$/, ''), tokenFile, refreshSeconds: refresh === undefined ? 60 : seconds('--refresh', refresh) }
}

function seconds(option: string, text: string): number {
  if (!/^[1-9]\d{0,5}$/.test(text)) throw new UsageError(`${option} must be a whole number of seconds, 1 to 999999`)
  return Number(text)
}
