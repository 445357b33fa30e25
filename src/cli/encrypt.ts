/** `keywrap encrypt`: a file into one envelope under a DEK from the service (the client's format, client/README.md). */
import { EnvelopeEncryptor } from '../../client/src/index.js'
import { parseCommandLine, UsageError, type Command } from './command.js'
import { ENVELOPE_HELP, ENVELOPE_OPTIONS, envelopeJob, runThrough } from './envelope-files.js'

export const encryptCommand: Command = {
  name: 'encrypt',
  summary: 'encrypt a file into an envelope (AES-256-GCM under a new DEK of the key ALIAS)',
  arguments: '--alias ALIAS --in FILE --out FILE [--context K=V …]',
  help: `  --alias ALIAS    the key alias the DEK is generated under
${ENVELOPE_HELP}`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, { ...ENVELOPE_OPTIONS, alias: { type: 'string' } })
    if (!values.alias) throw new UsageError('--alias is missing')
    const job = envelopeJob(values, positionals)
    let encryptor: EnvelopeEncryptor
    try {
      encryptor = new EnvelopeEncryptor({ client: job.client, alias: values.alias })
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    return runThrough(job, (source, sink) => encryptor.encryptFrom(source, sink, job.context), 'encrypt')
  },
}
