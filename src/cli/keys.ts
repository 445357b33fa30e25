/** `keywrap keys …`: administration of the local keyring in KEYWRAP_HOME. */
import type { Config } from '../config/config.js'
import { loadConfig } from '../config/load-config.js'
import { KeyringFile } from '../providers/local/keyring-file.js'
import { parseCommandLine, UsageError, type Command } from './command.js'

const REFRESH_NOTE = 'A running server sees keyring changes within KEYWRAP_KEY_REFRESH_SECONDS.'

export const keysListCommand: Command = {
  name: 'keys list',
  summary: "print the local keyring's versions and states",
  arguments: '',
  help: 'Reads the keyring in KEYWRAP_HOME (default ./.keywrap).',
  async run(args) {
    const { positionals } = parseCommandLine(args, {})
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`)
    const document = await new KeyringFile(loadConfig().home).read()
    for (const [name, key] of Object.entries(document.keys)) {
      for (const version of key.versions) {
        process.stdout.write(`local://${name}\tversion ${version.version}\t${version.state}${version.version === key.primary ? '\tprimary' : ''}\n`)
      }
    }
  },
}

export const keysRotateCommand: Command = {
  name: 'keys rotate',
  summary: 'add a version to a local key and make it primary',
  arguments: 'ALIAS',
  help: `ALIAS is a configured alias whose key is local://…. ${REFRESH_NOTE}`,
  async run(args) {
    const { keyring, name } = await localKey(args, 1)
    const version = await keyring.rotate(name)
    process.stdout.write(`local://${name}: version ${version} is now primary\n`)
  },
}

function stateCommand(action: 'enable' | 'disable'): Command {
  const state = action === 'enable' ? 'ENABLED' : 'DISABLED'
  return {
    name: `keys ${action}`,
    summary: action === 'enable' ? 'enable a disabled version of a local key' : 'disable a version of a local key (not the primary)',
    arguments: 'ALIAS VERSION',
    help: `ALIAS is a configured alias whose key is local://…; VERSION a version number. ${REFRESH_NOTE}`,
    async run(args) {
      const { keyring, name, versionText } = await localKey(args, 2)
      if (!/^[1-9]\d*$/.test(versionText!)) throw new UsageError(`VERSION must be a version number, not "${versionText}"`)
      const version = Number(versionText)
      await keyring.setState(name, version, state)
      process.stdout.write(`local://${name}: version ${version} is now ${state}\n`)
    },
  }
}

export const keysEnableCommand = stateCommand('enable')
export const keysDisableCommand = stateCommand('disable')

async function localKey(args: string[], count: 1 | 2) {
  const { positionals } = parseCommandLine(args, {})
  if (positionals.length !== count) throw new UsageError(count === 1 ? 'name one ALIAS' : 'name an ALIAS and a VERSION')
  const [alias, versionText] = positionals as [string, string | undefined]
  const config = loadConfig()
  const name = localKeyName(config, alias)
  const keyring = new KeyringFile(config.home)
  await keyring.ensureKeys([name])
  return { keyring, name, versionText }
}

function localKeyName(config: Config, alias: string): string {
  const uri = config.keys[alias]
  if (!uri) throw new UsageError(`no key has the alias "${alias}" (configured: ${Object.keys(config.keys).join(', ')})`)
  if (!uri.startsWith('local://')) throw new UsageError(`"${alias}" is ${uri}; only local keys are administered here (use gcloud kms for Cloud KMS)`)
  return uri.slice('local://'.length)
}
