/**
 * The Kubernetes KMS v2 API (api.proto beside this file), loaded with @grpc/proto-loader: the service
 * definition the plugin serves, and the client constructor tests and the bench call it with.
 */
import { fileURLToPath } from 'node:url'
import { loadPackageDefinition, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'

export const KMS_API_VERSION = 'v2'

export interface StatusResponse {
  version: string
  healthz: string
  key_id: string
}

export interface EncryptRequest {
  plaintext: Buffer
  uid: string
}

export interface EncryptResponse {
  ciphertext: Buffer
  key_id: string
  annotations: Record<string, Buffer>
}

export interface DecryptRequest {
  ciphertext: Buffer
  uid: string
  key_id: string
  annotations: Record<string, Buffer>
}

export interface DecryptResponse {
  plaintext: Buffer
}

const PROTO_PATH = fileURLToPath(new URL('./api.proto', import.meta.url))

function loadService(): ServiceClientConstructor {
  // keepCase: the messages keep the .proto's field names (key_id), as the API server's Go client sends them.
  const definition = loadSync(PROTO_PATH, { keepCase: true, defaults: true, longs: String, enums: String })
  const v2 = loadPackageDefinition(definition).v2 as Record<string, ServiceClientConstructor>
  const service = v2.KeyManagementService
  if (!service) throw new Error(`${PROTO_PATH} defines no v2.KeyManagementService.`)
  return service
}

/** The client class of v2.KeyManagementService (what an API server holds), built from the .proto. */
export const KeyManagementServiceClient: ServiceClientConstructor = loadService()

export const keyManagementServiceDefinition: ServiceDefinition = KeyManagementServiceClient.service
