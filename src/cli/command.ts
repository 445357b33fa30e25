/**
 * What every `keywrap` command declares, and the exit statuses they share (sysexits.h where one fits).
 * main.ts finds a command by its words, answers `--help` for it, and turns a UsageError into exit 64.
 */
import { parseArgs } from 'node:util'

export const EXIT = {
  ok: 0,
  /** The command ran and found a problem (a broken audit chain, an item that failed). */
  failed: 1,
  usage: 64,
  noInput: 66,
  config: 78,
} as const

export const EXIT_CODES_HELP = `Exit status: 0 done, 1 the command ran and reports a failure, 64 wrong arguments,
66 an input file cannot be read, 78 the configuration is invalid.`

export class UsageError extends Error {}

export interface Command {
  /** The words that call it, e.g. "keys rotate". */
  readonly name: string
  /** One line for the command list. */
  readonly summary: string
  /** What follows the name in the usage line, e.g. "ALIAS VERSION [--url URL]". */
  readonly arguments: string
  /** Options and details, shown by `keywrap help NAME` and `NAME --help`. */
  readonly help: string
  /** Resolves with the exit status (0 when it returns nothing). */
  run(args: string[]): Promise<number | void>
}

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'] & object

/** node:util's parseArgs, strict, with its errors as UsageErrors (exit 64 with the command's usage). */
export function parseCommandLine<const O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

/** The one positional argument a command takes, or a UsageError naming it. */
export function onePositional(positionals: string[], name: string): string {
  if (positionals.length === 0) throw new UsageError(`${name} is missing`)
  if (positionals.length > 1) throw new UsageError(`one ${name} only (also given: ${positionals.slice(1).join(' ')})`)
  return positionals[0]!
}

/** The longest --timeout, an hour (some bound is needed: Node fires a timer of more than 2^31 - 1 ms at once). */
export const MAX_TIMEOUT_SECONDS = 3600

/** A positive number given as `text` (e.g. seconds), at most `max`, or a UsageError naming the option. */
export function positiveNumber(text: string, name: string, max = Infinity): number {
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) throw new UsageError(`${name} must be a positive number, not "${text}"`)
  if (value > max) throw new UsageError(`${name} must be at most ${max}, not "${text}"`)
  return value
}
