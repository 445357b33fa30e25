/** `keywrap token`: a JWT from the development issuer in KEYWRAP_HOME. */
import { loadConfig } from '../config/load-config.js'
import { parseCommandLine, UsageError, type Command } from './command.js'

export const tokenCommand: Command = {
  name: 'token',
  summary: 'print a JWT from the development issuer',
  arguments: '[--sub NAME] [--ttl SECONDS]',
  help: `  --sub NAME      the token's subject (default "dev"), 1 to 256 characters
  --ttl SECONDS   its lifetime, 1 to 86400 (default 3600)

The issuer's keys live in KEYWRAP_HOME (default ./.keywrap): run it where the server runs, or give
both the same KEYWRAP_HOME, or the server will not trust the token. Off in production mode.`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, { sub: { type: 'string', default: 'dev' }, ttl: { type: 'string', default: '3600' } })
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`)
    const ttl = Number(values.ttl)
    if (!/^\d+$/.test(values.ttl) || ttl < 1 || ttl > 86_400) throw new UsageError('--ttl must be 1 to 86400 seconds')
    if (!values.sub || values.sub.length > 256) throw new UsageError('--sub must be 1 to 256 characters')
    const config = loadConfig()
    if (!config.auth.devIssuer) throw new UsageError('the development issuer is off (production mode or auth.devIssuer: false)')
    // jose loaded here, not at the top: the other commands need none of it.
    const { loadDevIssuer, mintDevToken } = await import('../auth/dev-issuer.js')
    const keys = await loadDevIssuer(config.home)
    if (keys.created) {
      process.stderr.write(
        `keywrap: created a new development issuer in ${keys.path}; only a server started with KEYWRAP_HOME=${config.home} trusts its tokens\n`,
      )
    }
    process.stdout.write(`${await mintDevToken(keys, { subject: values.sub, audience: config.auth.audience, ttlSeconds: ttl })}\n`)
  },
}
