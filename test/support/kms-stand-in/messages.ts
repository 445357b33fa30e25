// The subset of google.cloud.kms.v1 messages the stand-in reads and writes, in the
// shape @grpc/proto-loader produces (camelCase, enums as strings, int64 as number,
// unset message fields as null).

export interface Int64Value {
  value: number
}

export interface Timestamp {
  seconds: number
  nanos: number
}

export interface Duration {
  seconds: number
  nanos: number
}

export const VERSION_STATES = ['ENABLED', 'DISABLED', 'DESTROY_SCHEDULED', 'DESTROYED'] as const
export type VersionState = (typeof VERSION_STATES)[number]

export interface EncryptRequest {
  name: string
  plaintext: Buffer
  additionalAuthenticatedData: Buffer
  plaintextCrc32c: Int64Value | null
  additionalAuthenticatedDataCrc32c: Int64Value | null
}

export interface EncryptResponse {
  name: string
  ciphertext: Buffer
  ciphertextCrc32c: Int64Value
  verifiedPlaintextCrc32c: boolean
  verifiedAdditionalAuthenticatedDataCrc32c: boolean
  protectionLevel: 'SOFTWARE'
}

export interface DecryptRequest {
  name: string
  ciphertext: Buffer
  additionalAuthenticatedData: Buffer
  ciphertextCrc32c: Int64Value | null
  additionalAuthenticatedDataCrc32c: Int64Value | null
}

export interface DecryptResponse {
  plaintext: Buffer
  plaintextCrc32c: Int64Value
  usedPrimary: boolean
  protectionLevel: 'SOFTWARE'
}

export interface GetRequest {
  name: string
}

export interface ListCryptoKeyVersionsRequest {
  parent: string
  pageSize: number
  pageToken: string
  filter: string
  orderBy: string
}

export interface CryptoKeyVersionResource {
  name: string
  state: VersionState
  protectionLevel: 'SOFTWARE'
  algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION'
  createTime: Timestamp
  generateTime: Timestamp
  destroyTime?: Timestamp
  destroyEventTime?: Timestamp
}

export interface CryptoKeyResource {
  name: string
  primary: CryptoKeyVersionResource | null
  purpose: 'ENCRYPT_DECRYPT'
  createTime: Timestamp
  nextRotationTime?: Timestamp
  rotationPeriod?: Duration
  versionTemplate: { protectionLevel: 'SOFTWARE'; algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION' }
  labels: Record<string, string>
  destroyScheduledDuration: Duration
}

export interface ListCryptoKeyVersionsResponse {
  cryptoKeyVersions: CryptoKeyVersionResource[]
  nextPageToken: string
  totalSize: number
}

export function timestamp(date: Date): Timestamp {
  const ms = date.getTime()
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 }
}
