/**
 * `npx keywrap`: finds the command named by the first words of the arguments and runs it. Every
 * command answers `--help`, `keywrap help COMMAND` shows the same, and a wrong argument exits 64 with
 * the command's usage.
 */
import { readFileSync } from 'node:fs'
import { ConfigError } from '../config/load-config.js'
import { EXIT, EXIT_CODES_HELP, UsageError, type Command } from './command.js'
import { COMMANDS } from './commands.js'

const ENVIRONMENT_HELP = `Commands that read the configuration use KEYWRAP_HOME (default ./.keywrap) and KEYWRAP_CONFIG
like the server.`

function overview(): string {
  const synopses = COMMANDS.map((command) => `${command.name}${command.arguments ? ` ${command.arguments}` : ''}`)
  const width = Math.max(...synopses.map((synopsis) => synopsis.length))
  const lines = COMMANDS.map((command, index) => `  ${synopses[index]!.padEnd(width)}  ${command.summary}`)
  return `usage: keywrap COMMAND [ARGUMENTS]
       keywrap help COMMAND | COMMAND --help | --version

${lines.join('\n')}

${ENVIRONMENT_HELP}
${EXIT_CODES_HELP}`
}

function usageOf(command: Command): string {
  return `usage: keywrap ${command.name}${command.arguments ? ` ${command.arguments}` : ''}`
}

function helpOf(command: Command): string {
  return `${usageOf(command)}\n\n${command.summary}\n\n${command.help}\n\n${EXIT_CODES_HELP}`
}

/** The command whose name is the longest run of leading words, and the arguments after it. */
function findCommand(words: string[]): { command: Command; args: string[] } | undefined {
  let found: { command: Command; args: string[] } | undefined
  for (const command of COMMANDS) {
    const name = command.name.split(' ')
    if (name.every((word, index) => words[index] === word) && (!found || name.length > found.command.name.split(' ').length)) {
      found = { command, args: words.slice(name.length) }
    }
  }
  return found
}

function packageVersion(): string {
  // src/cli/ under tsx, dist/src/cli/ compiled: package.json is two or three levels up.
  for (const path of ['../../package.json', '../../../package.json']) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (manifest.name === 'keywrap' && manifest.version) return manifest.version
    } catch {
      // not this level
    }
  }
  return 'unknown'
}

/** Arguments before a `--` that ask for help. */
function asksForHelp(args: string[]): boolean {
  const end = args.indexOf('--')
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h')
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv
  if (first === undefined || first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
    process.stdout.write(`${overview()}\n`)
    return EXIT.ok
  }
  if (first === '--version' || first === '-v' || first === 'version') {
    process.stdout.write(`keywrap ${packageVersion()}\n`)
    return EXIT.ok
  }
  if (first === 'help') return showHelp(rest)
  const found = findCommand(argv)
  if (!found) return asksForHelp(rest) && groupOf(first).length > 0 ? showHelp([first]) : unknown(argv)
  const { command, args } = found
  if (asksForHelp(args)) {
    process.stdout.write(`${helpOf(command)}\n`)
    return EXIT.ok
  }
  try {
    return (await command.run(args)) ?? EXIT.ok
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`keywrap ${command.name}: ${error.message}\n${usageOf(command)}\n(keywrap help ${command.name} for more)\n`)
      return EXIT.usage
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`)
      return EXIT.config
    }
    process.stderr.write(`keywrap ${command.name}: ${error instanceof Error ? error.message : String(error)}\n`)
    return EXIT.failed
  }
}

/** The commands named `WORD …` (e.g. every `keys` action), for `keywrap help keys` and `keywrap keys`. */
function groupOf(word: string | undefined): Command[] {
  return COMMANDS.filter((command) => command.name.startsWith(`${word} `))
}

function groupHelp(word: string, group: Command[]): string {
  return `usage: keywrap ${word} ACTION [ARGUMENTS]\n\n${group.map((command) => `  ${usageOf(command).slice('usage: keywrap '.length)}\n      ${command.summary}`).join('\n')}\n\nkeywrap help ${word} ACTION for more.\n${EXIT_CODES_HELP}`
}

/** `keywrap help WORDS…`: one command's help, or the actions of a group such as `keys`. */
function showHelp(words: string[]): number {
  const group = groupOf(words[0])
  if (words.length === 1 && group.length > 0) {
    process.stdout.write(`${groupHelp(words[0]!, group)}\n`)
    return EXIT.ok
  }
  const found = findCommand(words)
  if (!found || found.args.length > 0) return unknown(words)
  process.stdout.write(`${helpOf(found.command)}\n`)
  return EXIT.ok
}

function unknown(words: string[]): number {
  const group = groupOf(words[0])
  const what =
    group.length === 0
      ? `unknown command "${words.join(' ')}"`
      : words[1] === undefined
        ? `${words[0]} needs an action`
        : `unknown ${words[0]} action "${words[1]}"`
  process.stderr.write(`keywrap: ${what}\n\n${group.length > 0 ? groupHelp(words[0]!, group) : overview()}\n`)
  return EXIT.usage
}

process.exitCode = await main(process.argv.slice(2))
