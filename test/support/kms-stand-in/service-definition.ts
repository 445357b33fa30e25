// The KeyManagementService gRPC definition, built from the protos that ship with
// @google-cloud/kms so the stand-in speaks exactly the wire format the real client does.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import * as protoLoader from '@grpc/proto-loader'
import type { ServiceDefinition } from '@grpc/grpc-js'

const SERVICE = 'google.cloud.kms.v1.KeyManagementService'

let cached: ServiceDefinition | undefined

export function keyManagementServiceDefinition(): ServiceDefinition {
  if (cached) return cached
  const require = createRequire(import.meta.url)
  const protosJsonPath = require.resolve('@google-cloud/kms/build/protos/protos.json')
  const json: unknown = JSON.parse(readFileSync(protosJsonPath, 'utf8'))
  const packageDefinition = protoLoader.fromJSON(json as Parameters<typeof protoLoader.fromJSON>[0], {
    // Same shape the gax client uses, except int64 as number: every int64 we
    // read is a CRC32C (< 2^32) or a timestamp, so Number is exact.
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  })
  const service = packageDefinition[SERVICE]
  if (!service || !('Encrypt' in service)) {
    throw new Error(`${SERVICE} not found in ${protosJsonPath}`)
  }
  cached = service as ServiceDefinition
  return cached
}
