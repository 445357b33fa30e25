/**
 * Options for @google-cloud/logging's clients that never make them look for credentials or a project
 * on their own (no metadata-server probe, no MetadataLookupWarning): the project id is explicit, the
 * universe domain is explicit, and against an emulator the channel is plaintext with no credentials.
 */
import { grpc } from 'google-gax'
import { parseEmulatorHost } from '../support/emulator-host.js'

export interface LoggingClientOptions {
  projectId: string
  universeDomain: string
  apiEndpoint?: string
  port?: number
  sslCreds?: grpc.ChannelCredentials
}

/**
 * For a client that calls the Logging API: Application Default Credentials, or plaintext to
 * `emulatorHost`. For one that never calls it (`offline`, the stdout and file sinks, which need a
 * Logging instance only to format entries), also no credentials: the Logging constructor builds API
 * clients that would otherwise look for them at once.
 */
export function loggingClientOptions(options: { projectId: string; emulatorHost?: string; offline?: boolean }): LoggingClientOptions {
  const base = { projectId: options.projectId, universeDomain: 'googleapis.com' }
  if (options.emulatorHost !== undefined) {
    const endpoint = parseEmulatorHost(options.emulatorHost)
    if ('error' in endpoint) throw new Error(`LOGGING_EMULATOR_HOST="${options.emulatorHost}" ${endpoint.error}`)
    return { ...base, apiEndpoint: endpoint.host, port: endpoint.port, sslCreds: grpc.credentials.createInsecure() }
  }
  return options.offline ? { ...base, sslCreds: grpc.credentials.createInsecure() } : base
}
