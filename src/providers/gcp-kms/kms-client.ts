/**
 * Builds the KeyManagementServiceClient a GcpKmsKeyProvider is given. With an emulator host it speaks
 * plaintext gRPC to that endpoint and never looks for Google credentials; without one it uses
 * Application Default Credentials, as every Google client library does.
 */
// The one client keywrap uses, not the package's index: that also loads four other clients and the
// static message classes (protos.js, 1.2 MB), none of which keywrap calls (2.5 MiB of heap, ~50 ms at start).
import { KeyManagementServiceClient } from '@google-cloud/kms/build/src/v1/key_management_service_client.js'
import { grpc } from 'google-gax'
import { parseEmulatorHost } from '../../support/emulator-host.js'

export interface KmsClientOptions {
  /** `host:port` of a Cloud KMS emulator (KMS_EMULATOR_HOST), e.g. `127.0.0.1:8085` or `[::1]:8085`. */
  readonly emulatorHost?: string
  readonly projectId?: string
}

export function createKmsClient(options: KmsClientOptions = {}): KeyManagementServiceClient {
  const project = options.projectId ? { projectId: options.projectId } : {}
  if (!options.emulatorHost) return new KeyManagementServiceClient(project)
  const endpoint = parseEmulatorHost(options.emulatorHost)
  if ('error' in endpoint) throw new Error(`The Cloud KMS emulator host must be host:port (e.g. 127.0.0.1:8085), not "${options.emulatorHost}".`)
  return new KeyManagementServiceClient({
    ...project,
    // gax joins host and port again: an IPv6 host keeps its brackets.
    apiEndpoint: endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host,
    port: endpoint.port,
    // Used as the channel's credentials as they are: no auth client, no per-call auth headers.
    sslCreds: grpc.credentials.createInsecure(),
    // Without it gax asks google-auth-library for the universe, which starts an ADC search.
    universeDomain: 'googleapis.com',
  })
}
