/**
 * Builds the KeyManagementServiceClient a GcpKmsKeyProvider is given. With an emulator host it speaks
 * plaintext gRPC to that endpoint and never looks for Google credentials; without one it uses
 * Application Default Credentials, as every Google client library does.
 */
// The one client keywrap uses, not the package's index: that also loads four other clients and the
// static message classes (protos.js, 1.2 MB), none of which keywrap calls (2.5 MiB of heap, ~50 ms at start).
import { KeyManagementServiceClient } from '@google-cloud/kms/build/src/v1/key_management_service_client.js'
import { grpc } from 'google-gax'

export interface KmsClientOptions {
  /** `host:port` of a Cloud KMS emulator (KMS_EMULATOR_HOST), e.g. `127.0.0.1:8085` or `[::1]:8085`. */
  readonly emulatorHost?: string
  readonly projectId?: string
}

export function createKmsClient(options: KmsClientOptions = {}): KeyManagementServiceClient {
  const project = options.projectId ? { projectId: options.projectId } : {}
  if (!options.emulatorHost) return new KeyManagementServiceClient(project)
  const { host, port } = parseEmulatorHost(options.emulatorHost)
  return new KeyManagementServiceClient({
    ...project,
    apiEndpoint: host,
    port,
    // Used as the channel's credentials as they are: no auth client, no per-call auth headers.
    sslCreds: grpc.credentials.createInsecure(),
    // Without it gax asks google-auth-library for the universe, which starts an ADC search.
    universeDomain: 'googleapis.com',
  })
}

/** Splits `host:port` (IPv6 hosts in brackets, which gax keeps when it joins them again). */
export function parseEmulatorHost(address: string): { host: string; port: number } {
  const match = /^(?:https?:\/\/)?(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):(\d{1,5})\/?$/.exec(address.trim())
  const port = Number(match?.[2])
  if (!match?.[1] || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`The Cloud KMS emulator host must be host:port (e.g. 127.0.0.1:8085), not "${address}".`)
  }
  return { host: match[1], port }
}
