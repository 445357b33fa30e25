/** `keywrap kms-plugin`: the Kubernetes KMS v2 plugin (docs/kubernetes.md). */
import { hostname } from 'node:os'
import { isAbsolute } from 'node:path'
import { runPlugin } from '../kms-plugin/run-plugin.js'
import { parseCommandLine, UsageError, type Command } from './command.js'

export const kmsPluginCommand: Command = {
  name: 'kms-plugin',
  summary: 'serve the Kubernetes KMS v2 plugin API on a unix socket',
  arguments: '--listen PATH --alias ALIAS [--principal NAME] [--grace SECONDS]',
  help: `  --listen PATH       the unix socket the API server's EncryptionConfiguration names (unix://PATH);
                      created 0600, a stale socket file nothing listens on is replaced
  --alias ALIAS       the configured key whose KEK wraps the API server's DEK seeds
  --principal NAME    who the plugin acts as, of issuer urn:keywrap:kms-plugin; it needs grants of
                      wrap and unwrap on ALIAS like any caller (default kube-apiserver@HOSTNAME)
  --grace SECONDS     Status stops answering "ok" when the key has not been read from its provider
                      for this long (default twice KEYWRAP_KEY_REFRESH_SECONDS)

Uses keywrap's configuration (KEYWRAP_CONFIG, KEYWRAP_HOME, the cache and the audit sink) like the
server. On SIGTERM the calls in flight finish, the socket is removed and the plugin exits 0.
See docs/kubernetes.md.`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      listen: { type: 'string' },
      alias: { type: 'string' },
      principal: { type: 'string', default: `kube-apiserver@${hostname()}` },
      grace: { type: 'string' },
    })
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`)
    if (!values.listen) throw new UsageError('--listen PATH is required')
    if (!isAbsolute(values.listen)) throw new UsageError('--listen must be an absolute path')
    if (!values.alias) throw new UsageError('--alias ALIAS is required')
    if (!values.principal || values.principal.length > 256) throw new UsageError('--principal must be 1 to 256 characters')
    await runPlugin({
      listen: values.listen,
      alias: values.alias,
      principal: values.principal,
      graceSeconds: values.grace === undefined ? undefined : seconds('--grace', values.grace),
    })
    // Everything is closed; a handle some library still holds must not keep the process alive.
    setTimeout(() => process.exit(), 500).unref()
  },
}

function seconds(option: string, text: string): number {
  if (!/^[1-9]\d{0,5}$/.test(text)) throw new UsageError(`${option} must be a whole number of seconds, 1 to 999999`)
  return Number(text)
}
