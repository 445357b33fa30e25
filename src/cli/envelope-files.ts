/**
 * What `keywrap encrypt` and `keywrap decrypt` share: the service's address and token, the context,
 * and running a file (or standard input) through an envelope stream into a file (or standard output).
 * A file is written under a temporary name and renamed once complete, so a failed decryption leaves
 * no partial plaintext behind; standard output gets each segment once it is verified.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { open, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Readable, Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { KeywrapClient } from '../../client/src/index.js'
import { clientEnvironment } from '../config/client-environment.js'
import { EXIT, UsageError } from './command.js'
import { reasonOption } from './keywrap-client.js'
import { ProgressBar } from './progress-bar.js'

export const ENVELOPE_OPTIONS = {
  in: { type: 'string' },
  out: { type: 'string' },
  context: { type: 'string', multiple: true },
  url: { type: 'string' },
  token: { type: 'string' },
  reason: { type: 'string' },
} as const

export const ENVELOPE_HELP = `  --in FILE        the input, - for standard input
  --out FILE       the output, - for standard output; a file is written whole or not at all
  --context K=V    a context entry (repeat for more); decryption needs the same entries
  --url URL        the keywrap service (default KEYWRAP_URL, else http://localhost:8080)
  --token TOKEN    a bearer token (default KEYWRAP_TOKEN; prefer it: options show in the process list)
  --reason TEXT    why, sent as x-keywrap-reason and recorded in the audit trail (1-256 printable ASCII)

A progress bar is drawn on standard error when it is a terminal and the input a file of 8 MiB or more.`

const PROGRESS_FROM_BYTES = 8 * 1024 * 1024

export interface EnvelopeArguments {
  in?: string
  out?: string
  context?: string[]
  url?: string
  token?: string
  reason?: string
}

export interface EnvelopeJob {
  readonly client: KeywrapClient
  readonly context: Record<string, string>
  readonly input: string
  readonly output: string
}

export function envelopeJob(values: EnvelopeArguments, positionals: string[]): EnvelopeJob {
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`)
  if (!values.in) throw new UsageError('--in is missing (a file, or - for standard input)')
  if (!values.out) throw new UsageError('--out is missing (a file, or - for standard output)')
  const environment = clientEnvironment()
  const token = values.token ?? environment.token
  if (!token) throw new UsageError('no token: set KEYWRAP_TOKEN or give --token')
  const url = values.url ?? environment.url ?? 'http://localhost:8080'
  const reason = reasonOption(values.reason)
  let client: KeywrapClient
  try {
    client = new KeywrapClient({ baseUrl: url, token, ...(reason !== undefined && { reason }) })
  } catch {
    throw new UsageError(`--url "${url}" is not an http or https URL`)
  }
  return { client, context: parseContext(values.context ?? []), input: values.in, output: values.out }
}

function parseContext(entries: string[]): Record<string, string> {
  const context: Record<string, string> = {}
  for (const entry of entries) {
    const equals = entry.indexOf('=')
    if (equals < 1) throw new UsageError(`--context "${entry}" is not KEY=VALUE`)
    const name = entry.slice(0, equals)
    if (Object.hasOwn(context, name)) throw new UsageError(`--context "${name}" is given twice`)
    context[name] = entry.slice(equals + 1)
  }
  return context
}

/** Runs the input through `transform` into the output; resolves with the exit status. */
export async function runThrough(job: EnvelopeJob, transform: Transform, label: string): Promise<number> {
  let input: Readable
  let size: number | undefined
  if (job.input === '-') {
    input = process.stdin
  } else {
    try {
      const handle = await open(job.input, 'r')
      size = (await handle.stat()).size
      input = createReadStream('', { fd: handle })
    } catch (error) {
      process.stderr.write(`keywrap ${label}: cannot read ${job.input} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})\n`)
      return EXIT.noInput
    }
  }
  const stages: (Readable | Transform | Writable)[] = [input]
  if (size !== undefined && size >= PROGRESS_FROM_BYTES && process.stderr.isTTY) stages.push(new ProgressBar(`keywrap ${label}`, size, process.stderr))
  stages.push(transform)
  if (job.output === '-') {
    await pipeline(stages.concat(process.stdout) as [Readable, ...Writable[]])
    return EXIT.ok
  }
  if ((await stat(job.output).catch(() => undefined))?.isDirectory()) throw new UsageError(`--out ${job.output} is a directory`)
  const partial = join(dirname(job.output), `.${basename(job.output)}.${randomBytes(6).toString('hex')}.partial`)
  try {
    await pipeline(stages.concat(createWriteStream(partial, { mode: 0o600, flags: 'wx' })) as [Readable, ...Writable[]])
    await rename(partial, job.output)
  } catch (error) {
    await rm(partial, { force: true })
    throw error
  }
  return EXIT.ok
}
