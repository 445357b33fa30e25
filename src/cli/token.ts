/** `keywrap token`: a JWT from the development issuer in KEYWRAP_HOME. */
import type { REGISTERED_CLAIMS } from '../auth/dev-issuer.js'
import { parseCommandLine, UsageError, type Command } from './command.js'

export const tokenCommand: Command = {
  name: 'token',
  summary: 'print a JWT from the development issuer',
  arguments: '[--sub NAME] [--ttl SECONDS] [--claim NAME=VALUE]...',
  help: `  --sub NAME      the token's subject (default "dev"), 1 to 256 characters
  --ttl SECONDS   its lifetime, 1 to 86400 (default 3600)
  --claim NAME=VALUE
                  a string claim to add, such as tenant=acme for a grant's {"claim": "tenant"}
                  context condition; repeat for more

The issuer's keys live in KEYWRAP_HOME (default ./.keywrap): run it where the server runs, or give
both the same KEYWRAP_HOME, or the server will not trust the token. Off in production mode.`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      sub: { type: 'string', default: 'dev' },
      ttl: { type: 'string', default: '3600' },
      claim: { type: 'string', multiple: true, default: [] },
    })
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`)
    const ttl = Number(values.ttl)
    if (!/^\d+$/.test(values.ttl) || ttl < 1 || ttl > 86_400) throw new UsageError('--ttl must be 1 to 86400 seconds')
    if (!values.sub || values.sub.length > 256) throw new UsageError('--sub must be 1 to 256 characters')
    // Loaded when run, not with the command list (jose, the configuration).
    const [{ loadDevIssuer, mintDevToken, REGISTERED_CLAIMS }, { loadConfig }] = await Promise.all([
      import('../auth/dev-issuer.js'),
      import('../config/load-config.js'),
    ])
    const claims = parseClaims(values.claim, REGISTERED_CLAIMS)
    const config = loadConfig()
    if (!config.auth.devIssuer) throw new UsageError('the development issuer is off (production mode or auth.devIssuer: false)')
    const keys = await loadDevIssuer(config.home)
    if (keys.created) {
      process.stderr.write(
        `keywrap: created a new development issuer in ${keys.path}; only a server started with KEYWRAP_HOME=${config.home} trusts its tokens\n`,
      )
    }
    process.stdout.write(`${await mintDevToken(keys, { subject: values.sub, audience: config.auth.audience, ttlSeconds: ttl, claims })}\n`)
  },
}

function parseClaims(given: readonly string[], registered: typeof REGISTERED_CLAIMS): Record<string, string> {
  const claims: [string, string][] = []
  for (const text of given) {
    const match = /^([^=]{1,64})=(.{0,256})$/s.exec(text)
    if (!match) throw new UsageError(`--claim "${text}" is not NAME=VALUE (a name of 1 to 64 characters, a value of up to 256)`)
    const [, name, value] = match as unknown as [string, string, string]
    if ((registered as readonly string[]).includes(name)) throw new UsageError(`--claim ${name}: the issuer sets "${name}" itself`)
    if (claims.some(([seen]) => seen === name)) throw new UsageError(`--claim ${name} is given twice`)
    claims.push([name, value])
  }
  return Object.fromEntries(claims)
}
