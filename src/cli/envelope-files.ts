/**
 * What `keywrap encrypt` and `keywrap decrypt` share: the service's address and token, the context,
 * and running a file (or standard input) through an envelope stream into a file (or standard output).
 * A file is written under a temporary name and renamed once complete, so a failed decryption leaves
 * no partial plaintext behind; standard output gets each segment once it is verified.
 */
import { randomBytes } from 'node:crypto'
import { read } from 'node:fs'
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { KeywrapClient, type ByteSink, type ByteSource } from '../../client/src/index.js'
import { DEFAULT_TIMEOUT_MS } from '../../client/src/keywrap-client.js'
import { EXIT, MAX_TIMEOUT_SECONDS, positiveNumber, UsageError } from './command.js'
import { ProgressBar } from './progress-bar.js'
import { SERVICE_TARGET_OPTIONS, serviceTarget, type ServiceTargetArguments } from './service-target.js'

/** Seconds one call to the service may take by default: the client package's own default. */
const DEFAULT_TIMEOUT_SECONDS = DEFAULT_TIMEOUT_MS / 1000

export const ENVELOPE_OPTIONS = {
  in: { type: 'string' },
  out: { type: 'string' },
  context: { type: 'string', multiple: true },
  timeout: { type: 'string', default: String(DEFAULT_TIMEOUT_SECONDS) },
  ...SERVICE_TARGET_OPTIONS,
} as const

export const ENVELOPE_HELP = `  --in FILE        the input, - for standard input
  --out FILE       the output, - for standard output; a file is written whole or not at all
  --context K=V    a context entry (repeat for more); decryption needs the same entries
  --url URL        the keywrap service (default KEYWRAP_URL, else http://localhost:8080)
  --token TOKEN    a bearer token (default KEYWRAP_TOKEN; prefer it: options show in the process list)
  --reason TEXT    why, sent as x-keywrap-reason and recorded in the audit trail (1-256 printable ASCII)
  --timeout S      seconds one call to the service may take, answer included (default ${DEFAULT_TIMEOUT_SECONDS}, at most ${MAX_TIMEOUT_SECONDS})

A progress bar is drawn on standard error when it is a terminal and the input a file of 8 MiB or more.`

const PROGRESS_FROM_BYTES = 8 * 1024 * 1024

export interface EnvelopeArguments extends ServiceTargetArguments {
  in?: string
  out?: string
  context?: string[]
  timeout: string
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
  const timeoutMs = Math.ceil(positiveNumber(values.timeout, '--timeout', MAX_TIMEOUT_SECONDS) * 1000)
  const { url, token, reason } = serviceTarget(values)
  const client = new KeywrapClient({ baseUrl: url, token, timeoutMs, ...(reason !== undefined && { reason }) })
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

/** What runThrough() runs: encryptFrom or decryptFrom of an EnvelopeEncryptor. */
export type EnvelopeRun = (source: ByteSource, sink: ByteSink) => Promise<void>

/**
 * Runs the input through `run` into the output; resolves with the exit status. The CLI reads into
 * the encryptor's buffers and writes each result before the next is made, so memory stays flat
 * however large the input (docs/performance.md, "The client").
 */
export async function runThrough(job: EnvelopeJob, run: EnvelopeRun, label: string): Promise<number> {
  let input: ByteSource
  let closeInput = async () => {}
  let size: number | undefined
  if (job.input === '-') {
    input = standardInput()
  } else {
    try {
      const handle = await open(job.input, 'r')
      closeInput = () => handle.close()
      size = (await handle.stat()).size
      input = fileSource(handle)
    } catch (error) {
      await closeInput()
      process.stderr.write(`keywrap ${label}: cannot read ${job.input} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})\n`)
      return EXIT.noInput
    }
  }
  try {
    if (size !== undefined && size >= PROGRESS_FROM_BYTES && process.stderr.isTTY)
      input = withProgress(input, new ProgressBar(`keywrap ${label}`, size, process.stderr))
    if (job.output === '-') {
      await run(input, standardOutput())
      return EXIT.ok
    }
    if ((await stat(job.output).catch(() => undefined))?.isDirectory()) throw new UsageError(`--out ${job.output} is a directory`)
    const partial = join(dirname(job.output), `.${basename(job.output)}.${randomBytes(6).toString('hex')}.partial`)
    try {
      const output = await open(partial, 'wx', 0o600)
      try {
        await run(input, fileSink(output))
      } finally {
        await output.close()
      }
      await rename(partial, job.output)
    } catch (error) {
      await rm(partial, { force: true })
      throw error
    }
    return EXIT.ok
  } finally {
    await closeInput()
  }
}

function fileSource(handle: FileHandle): ByteSource {
  return { read: async (buffer) => (await handle.read(buffer, 0, buffer.length, null)).bytesRead }
}

function fileSink(handle: FileHandle): ByteSink {
  return {
    async write(bytes) {
      for (let written = 0; written < bytes.length;) written += (await handle.write(bytes, written, bytes.length - written)).bytesWritten
    },
  }
}

/**
 * Standard input read straight into the encryptor's buffers. A descriptor someone made non-blocking
 * answers EAGAIN when it is empty: then it is read as process.stdin, which waits for data.
 */
function standardInput(): ByteSource {
  let chunks: AsyncIterator<Buffer> | undefined
  let pending: Buffer = Buffer.alloc(0)
  return {
    async read(buffer) {
      if (!chunks) {
        try {
          return await readInto(0, buffer)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error
          chunks = (process.stdin as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
        }
      }
      if (pending.length === 0) {
        const next = await chunks.next()
        if (next.done) return 0
        pending = next.value
      }
      const copied = pending.copy(buffer)
      pending = pending.subarray(copied)
      return copied
    },
  }
}

function readInto(fd: number, buffer: Buffer): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, 0, buffer.length, null, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))))
}

/** process.stdout, one write at a time: each resolves once the bytes have left the process. */
function standardOutput(): ByteSink {
  return {
    write: (bytes) => new Promise((resolve, reject) => process.stdout.write(bytes, (error) => (error ? reject(error) : resolve()))),
  }
}

function withProgress(source: ByteSource, bar: ProgressBar): ByteSource {
  let ended = false
  return {
    async read(buffer) {
      const bytesRead = await source.read(buffer)
      if (bytesRead > 0) bar.advance(bytesRead)
      else if (!ended) bar.end()
      ended ||= bytesRead === 0
      return bytesRead
    },
  }
}
