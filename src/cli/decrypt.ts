/** `keywrap decrypt`: an envelope back into its plaintext, its DEK unwrapped by the service. */
import { EnvelopeEncryptor } from '../../client/src/index.js'
import { parseCommandLine, UsageError, type Command } from './command.js'
import { ENVELOPE_HELP, ENVELOPE_OPTIONS, envelopeJob, runThrough } from './envelope-files.js'

export const decryptCommand: Command = {
  name: 'decrypt',
  summary: 'decrypt an envelope made by keywrap encrypt or @keywrap/client; exit 1 if it is not intact',
  arguments: '--in FILE --out FILE [--context K=V …]',
  help: `  --alias ALIAS    refuse an envelope of another key alias (default: the alias the envelope names)
${ENVELOPE_HELP}`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, { ...ENVELOPE_OPTIONS, alias: { type: 'string' } })
    const job = envelopeJob(values, positionals)
    let encryptor: EnvelopeEncryptor
    try {
      encryptor = new EnvelopeEncryptor({ client: job.client, ...(values.alias !== undefined && { alias: values.alias }) })
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    return runThrough(job, (source, sink) => encryptor.decryptFrom(source, sink, job.context), 'decrypt')
  },
}
