/**
 * `npx keywrap`: development tokens and local keyring administration, on the same KEYWRAP_HOME and
 * KEYWRAP_CONFIG as the server.
 */
import { parseArgs } from 'node:util'
import { loadDevIssuer, mintDevToken } from '../auth/dev-issuer.js'
import { ConfigError, loadConfig } from '../config/load-config.js'
import type { Config } from '../config/config.js'
import { KeyringFile } from '../providers/local/keyring-file.js'
import { runAuditVerify } from './audit-verify.js'

const USAGE = `usage: keywrap <command>

  token [--sub NAME] [--ttl SECONDS]   print a JWT from the development issuer (default sub "dev", ttl 3600)
  keys rotate ALIAS                    add a version to a local key and make it primary
  keys disable ALIAS VERSION           disable a version of a local key (not the primary)
  keys enable ALIAS VERSION            enable it again
  keys list                            print the local keyring's versions and states
  audit verify [--unordered] FILE      check the hash chains of an audit trail (JSON lines or a
                                       Cloud Logging export); exit 1 on any gap, edit or reordering

Uses KEYWRAP_HOME (default ./.keywrap) and KEYWRAP_CONFIG like the server. A running server sees
keyring changes within KEYWRAP_KEY_REFRESH_SECONDS.`

class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'token':
      return token(rest)
    case 'keys':
      return keys(rest)
    case 'audit':
      if (rest[0] !== 'verify') throw new UsageError(`unknown audit action "${rest[0] ?? ''}"`)
      process.exitCode = await runAuditVerify(rest.slice(1))
      return
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`)
      return
    default:
      throw new UsageError(`unknown command "${command}"`)
  }
}

async function token(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { sub: { type: 'string', default: 'dev' }, ttl: { type: 'string', default: '3600' } } })
  const ttl = Number(values.ttl)
  if (!/^\d+$/.test(values.ttl) || ttl < 1 || ttl > 86_400) throw new UsageError('--ttl must be 1 to 86400 seconds')
  if (!values.sub || values.sub.length > 256) throw new UsageError('--sub must be 1 to 256 characters')
  const config = readConfig()
  if (!config.auth.devIssuer) throw new UsageError('the development issuer is off (production mode or auth.devIssuer: false)')
  const keys = await loadDevIssuer(config.home)
  process.stdout.write(`${await mintDevToken(keys, { subject: values.sub, audience: config.auth.audience, ttlSeconds: ttl })}\n`)
}

async function keys(args: string[]): Promise<void> {
  const [action, alias, versionText, ...extra] = args
  const config = readConfig()
  const keyring = new KeyringFile(config.home)
  if (action === 'list') {
    const document = await keyring.read()
    for (const [name, key] of Object.entries(document.keys)) {
      for (const version of key.versions) {
        process.stdout.write(`local://${name}\tversion ${version.version}\t${version.state}${version.version === key.primary ? '\tprimary' : ''}\n`)
      }
    }
    return
  }
  if (extra.length > 0 || !alias) throw new UsageError(`keys ${action ?? ''}: wrong arguments`)
  const name = localKeyName(config, alias)
  await keyring.ensureKeys([name])
  switch (action) {
    case 'rotate': {
      const version = await keyring.rotate(name)
      process.stdout.write(`local://${name}: version ${version} is now primary\n`)
      return
    }
    case 'disable':
    case 'enable': {
      const version = Number(versionText)
      if (!versionText || !/^[1-9]\d*$/.test(versionText)) throw new UsageError(`keys ${action} ALIAS VERSION: VERSION must be a version number`)
      await keyring.setState(name, version, action === 'enable' ? 'ENABLED' : 'DISABLED')
      process.stdout.write(`local://${name}: version ${version} is now ${action === 'enable' ? 'ENABLED' : 'DISABLED'}\n`)
      return
    }
    default:
      throw new UsageError(`unknown keys action "${action ?? ''}"`)
  }
}

function localKeyName(config: Config, alias: string): string {
  const uri = config.keys[alias]
  if (!uri) throw new UsageError(`no key has the alias "${alias}" (configured: ${Object.keys(config.keys).join(', ')})`)
  if (!uri.startsWith('local://')) throw new UsageError(`"${alias}" is ${uri}; only local keys are administered here (use gcloud kms for Cloud KMS)`)
  return uri.slice('local://'.length)
}

function readConfig(): Config {
  return loadConfig()
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) process.stderr.write(`keywrap: ${error.message}\n\n${USAGE}\n`)
  else if (error instanceof ConfigError) process.stderr.write(`${error.message}\n`)
  else process.stderr.write(`keywrap: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = error instanceof UsageError ? 64 : 1
})
