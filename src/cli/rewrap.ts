/** `keywrap rewrap`: a bulk rewrap campaign of a JSON Lines file through a running keywrap's :batchRewrap. */
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { EXIT, MAX_TIMEOUT_SECONDS, parseCommandLine, positiveNumber, UsageError, type Command } from './command.js'
import { DEFAULT_TIMEOUT_SECONDS, KeywrapClient, ServiceError } from './keywrap-client.js'
import { CampaignStopped, RewrapCampaign } from './rewrap/campaign.js'
import { countVersions, dryRunReport } from './rewrap/dry-run.js'
import { retryDelaySeconds } from './rewrap/pacing.js'
import { appendLines, assertReadable, completeLines, countLines, readLines, stdoutLines } from './rewrap/jsonl-files.js'
import { duration, Progress } from './rewrap/progress.js'
import { SERVICE_TARGET_OPTIONS, serviceTarget } from './service-target.js'

const MAX_CHUNK = 1000
/**
 * Requests in flight by default: 4 × 64 items is twice the provider calls a keywrap runs at once by
 * default (KEYWRAP_PROVIDER_MAX_CONCURRENT, 128), so its slots stay busy while a request's last items
 * finish and the next request arrives, and within the calls it queues (KEYWRAP_PROVIDER_MAX_QUEUED,
 * 256), so none is refused.
 */
export const DEFAULT_CONCURRENCY = 4
export const DEFAULT_CHUNK = 500

export const rewrapCommand: Command = {
  name: 'rewrap',
  summary: 'rewrap a JSON Lines file of wrapped keys under the primary version (resumable)',
  arguments: '--alias ALIAS --in FILE [--url URL] [--out FILE] [--resume] [--dry-run] [OPTIONS]',
  help: `Each input line is a JSON string (a wrapped key) or an object with "wrappedKey", optional "context"
and any other fields. Each output line is the same, in the same order, with "wrappedKey" replaced by
its rewrapped value and "rewrapped": true|false (false: it was already under the primary version),
or, when it failed for good, "rewrapped": false and "error": {"code", "detail"}. A string line comes
out as an object. Blank lines stay blank.

  --url URL            the keywrap service (default KEYWRAP_URL, else http://localhost:8080)
  --alias ALIAS        the key alias the wrapped keys belong to
  --in FILE            the input file (JSON Lines)
  --out FILE           the output file (default standard output); must not exist unless --resume
  --token TOKEN        the bearer token (default: KEYWRAP_TOKEN); it needs rewrap and keys.read
  --reason TEXT        why (a change ticket), sent with every request as x-keywrap-reason and
                       recorded in the audit trail; grants with requireReason ask for one
  --resume             continue an interrupted run: the complete lines of --out are kept (a partial
                       last line is cut off) and as many input lines are skipped
  --dry-run            count the keys not under the primary version, per version; change nothing
  --rate N             at most N keys a second (keep inside the Cloud KMS quota: each rewrap of an
                       uncached key costs a Decrypt and an Encrypt)
  --concurrency N      requests in flight at once (default ${DEFAULT_CONCURRENCY}); the service runs up to 64 items of
                       each at once, and at most KEYWRAP_PROVIDER_MAX_CONCURRENT provider calls (128
                       by default) with KEYWRAP_PROVIDER_MAX_QUEUED (256) waiting: the default keeps
                       its call slots busy without overflowing its queue
  --chunk N            keys per request, 1 to ${MAX_CHUNK} (default ${DEFAULT_CHUNK})
  --attempts N         tries per request (the first key lookup included) and per item before an
                       item is written as failed or the run ends (default 8)
  --timeout S          seconds a request may take, answer included, before it counts as a lost
                       connection (default ${DEFAULT_TIMEOUT_SECONDS})
  --progress-every S   seconds between progress lines when standard error is not a terminal (default 5)

A request answered 429 or 503 waits for its Retry-After, at most 120 s (and holds the others back);
an answer without one, lost connections and requests without an answer within --timeout are retried
with backoff (0.5 s doubling to 30 s);
items that fail with a transient problem are sent again. 401, 403, 404 or 400 stop the run after
writing every line before the failed request; rerun with --resume once fixed. SIGINT or SIGTERM stop
reading and finish the requests in flight.
Exit status 1 when any item failed or the run stopped; a summary goes to standard error.`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      ...SERVICE_TARGET_OPTIONS,
      alias: { type: 'string' },
      in: { type: 'string' },
      out: { type: 'string' },
      resume: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      rate: { type: 'string' },
      concurrency: { type: 'string', default: String(DEFAULT_CONCURRENCY) },
      chunk: { type: 'string', default: String(DEFAULT_CHUNK) },
      attempts: { type: 'string', default: '8' },
      timeout: { type: 'string', default: String(DEFAULT_TIMEOUT_SECONDS) },
      'progress-every': { type: 'string', default: '5' },
    })
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`)
    const alias = required(values.alias, '--alias')
    const input = required(values.in, '--in')
    const target = serviceTarget(values)
    const rate = values.rate === undefined ? undefined : positiveNumber(values.rate, '--rate')
    const concurrency = positiveInteger(values.concurrency, '--concurrency', 64)
    const chunkSize = positiveInteger(values.chunk, '--chunk', MAX_CHUNK)
    const attempts = positiveInteger(values.attempts, '--attempts', 100)
    const timeout = positiveNumber(values.timeout, '--timeout', MAX_TIMEOUT_SECONDS)
    const progressEvery = positiveNumber(values['progress-every'], '--progress-every')
    const output = values.out
    if (values.resume && output === undefined) throw new UsageError('--resume needs --out FILE: the output file is where the run resumes')
    if (values['dry-run'] && (output !== undefined || values.resume)) throw new UsageError('--dry-run writes nothing: leave out --out and --resume')
    if (input === '-') throw new UsageError('--in must be a file (it is read twice: once to count its lines)')
    if (output !== undefined && resolve(output) === resolve(input)) throw new UsageError('--out must be another file than --in')

    try {
      await assertReadable(input)
    } catch (error) {
      process.stderr.write(`keywrap rewrap: cannot read ${input} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})\n`)
      return EXIT.noInput
    }
    const client = new KeywrapClient(target, timeout)
    const primaryVersion = await readPrimaryVersion(client, alias, attempts, target.url)
    if (primaryVersion === undefined) return EXIT.failed
    if (values['dry-run']) {
      process.stdout.write(dryRunReport(alias, await countVersions(readLines(input), primaryVersion)))
      return EXIT.ok
    }

    if (output !== undefined && !values.resume && (await sizeOf(output)) > 0) {
      throw new UsageError(`${output} exists: add --resume to continue the run that wrote it, or remove it`)
    }
    const total = await countLines(input)
    const done = values.resume ? await completeLines(output!) : 0
    if (done > total) throw new UsageError(`${output} has ${done} lines, more than the ${total} of ${input}: not an output of this input`)
    const sink = output === undefined ? stdoutLines() : await appendLines(output, { truncate: !values.resume })

    const campaign = new RewrapCampaign({ client, alias, chunkSize, concurrency, rate, attempts })
    const progress = new Progress(campaign.counts, { stream: process.stderr, total, resumedAt: done, intervalSeconds: progressEvery })
    const onSignal = () => campaign.stop()
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal)
    const started = performance.now()
    let stopped: string | undefined
    progress.start()
    try {
      await campaign.run(readLines(input, done), sink)
    } catch (error) {
      if (!(error instanceof CampaignStopped)) throw error
      stopped = error.message
    } finally {
      progress.finish()
      await sink.close()
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal)
    }
    const { lines, rewrapped, current, failed, retries } = campaign.counts
    const seconds = (performance.now() - started) / 1000
    const position = done + lines
    process.stderr.write(
      `keywrap rewrap ${alias}: ${lines} lines in ${duration(seconds)} (${rewrapped} rewrapped, ${current} already current, ${failed} failed; ${retries} retries)` +
        (done > 0 ? `, resumed after line ${done}` : '') +
        `; ${position} of ${total} lines done\n`,
    )
    if (stopped !== undefined) process.stderr.write(`keywrap rewrap: stopped: ${stopped}\n`)
    if (position < total) process.stderr.write(`keywrap rewrap: ${total - position} lines remain: run again with --resume\n`)
    return failed > 0 || position < total ? EXIT.failed : EXIT.ok
  },
}

/**
 * The alias's primary version, the key lookup retried as the campaign's requests are (a service that
 * is starting, overloaded or briefly unreachable); undefined, with the reason on stderr, once it fails for good.
 */
async function readPrimaryVersion(client: KeywrapClient, alias: string, attempts: number, url: string): Promise<number | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await client.getKey(alias)).primaryVersion
    } catch (error) {
      if (!(error instanceof ServiceError)) throw error
      if (!error.transient || attempt >= attempts) {
        process.stderr.write(`keywrap rewrap: cannot read key "${alias}" from ${url}: ${error.message}\n`)
        return undefined
      }
      const seconds = retryDelaySeconds(error.retryAfterSeconds, attempt)
      process.stderr.write(`keywrap rewrap: reading key "${alias}": ${error.message}; trying again in ${seconds.toFixed(1)} s\n`)
      await sleep(seconds * 1000)
    }
  }
}

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new UsageError(`${name} is missing`)
  return value
}

function positiveInteger(text: string, name: string, max: number): number {
  const value = Number(text)
  if (!/^\d+$/.test(text) || value < 1 || value > max) throw new UsageError(`${name} must be an integer from 1 to ${max}, not "${text}"`)
  return value
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size
  } catch {
    return 0
  }
}
