/** Turns a CryptoKey and its versions, as Cloud KMS lists them, into keywrap's KeyDescription. */
import { createRequire } from 'node:module'
import type { protos } from '@google-cloud/kms'
import type { KeyDescription, KeyVersionInfo, KeyVersionState } from '../key-provider.js'
import { versionNumberOf } from './resource-names.js'

type CryptoKey = protos.google.cloud.kms.v1.ICryptoKey
type CryptoKeyVersion = protos.google.cloud.kms.v1.ICryptoKeyVersion
type Timestamp = protos.google.protobuf.ITimestamp | null | undefined
type Duration = protos.google.protobuf.IDuration | null | undefined

/** Enum values by name, from the descriptor the client loads itself (require() shares its parse). */
type EnumValues = Readonly<Record<string, number>>
interface Descriptor {
  nested: { google: { nested: { cloud: { nested: { kms: { nested: { v1: { nested: Record<string, DescriptorType> } } } } } } } }
}
interface DescriptorType {
  values?: EnumValues
  nested?: Record<string, DescriptorType>
}
const kmsV1 = (createRequire(import.meta.url)('@google-cloud/kms/build/protos/protos.json') as Descriptor).nested.google.nested.cloud.nested.kms.nested.v1
  .nested
const PURPOSES = enumValues(kmsV1.CryptoKey?.nested?.CryptoKeyPurpose, 'CryptoKey.CryptoKeyPurpose')
const VERSION_STATE_VALUES = enumValues(kmsV1.CryptoKeyVersion?.nested?.CryptoKeyVersionState, 'CryptoKeyVersion.CryptoKeyVersionState')
const ALGORITHMS = enumValues(kmsV1.CryptoKeyVersion?.nested?.CryptoKeyVersionAlgorithm, 'CryptoKeyVersion.CryptoKeyVersionAlgorithm')
const PROTECTION_LEVELS = enumValues(kmsV1.ProtectionLevel, 'ProtectionLevel')

/** A descriptor that moved in a new client version fails loudly at load, not as keys refused one by one. */
function enumValues(type: DescriptorType | undefined, name: string): EnumValues {
  if (!type?.values) throw new Error(`@google-cloud/kms's descriptor has no enum google.cloud.kms.v1.${name}.`)
  return type.values
}

/**
 * Cloud KMS has more version states than keywrap tells apart; each maps to what it allows. Versions
 * being generated or imported cannot be used yet (DISABLED); ones waiting for an external key manager
 * to destroy their material are already destroyed as far as Cloud KMS is concerned.
 */
const VERSION_STATES: Readonly<Record<string, KeyVersionState>> = {
  ENABLED: 'ENABLED',
  DISABLED: 'DISABLED',
  DESTROY_SCHEDULED: 'DESTROY_SCHEDULED',
  DESTROYED: 'DESTROYED',
  PENDING_EXTERNAL_DESTRUCTION: 'DESTROYED',
  EXTERNAL_DESTRUCTION_FAILED: 'DESTROYED',
}

export function describeCryptoKey(uri: string, keyName: string, key: CryptoKey, versions: readonly CryptoKeyVersion[], refreshedAt: Date): KeyDescription {
  const purpose = enumName(key.purpose, PURPOSES)
  if (purpose && purpose !== 'ENCRYPT_DECRYPT' && purpose !== 'CRYPTO_KEY_PURPOSE_UNSPECIFIED')
    throw new Error(`${keyName} has purpose ${purpose}; keywrap needs an ENCRYPT_DECRYPT key.`)
  const primaryVersion = versionNumberOf(keyName, key.primary?.name)
  if (primaryVersion === undefined) throw new Error(`${keyName} has no primary version.`)
  return {
    uri,
    provider: 'gcp-kms',
    primaryVersion,
    versions: versions.map((version) => versionInfo(keyName, version)).sort((a, b) => a.version - b.version),
    attributes: attributesOf(key),
    refreshedAt: refreshedAt.toISOString(),
  }
}

function versionInfo(keyName: string, version: CryptoKeyVersion): KeyVersionInfo {
  const number = versionNumberOf(keyName, version.name)
  if (number === undefined) throw new Error(`Cloud KMS listed ${version.name}, which is not a version of ${keyName}.`)
  const createTime = isoTime(version.createTime)
  return {
    version: number,
    name: version.name!,
    state: VERSION_STATES[enumName(version.state, VERSION_STATE_VALUES)] ?? 'DISABLED',
    ...(createTime !== undefined && { createTime }),
  }
}

function attributesOf(key: CryptoKey): Record<string, string> {
  const template = key.primary ?? key.versionTemplate
  const attributes: Record<string, string> = {}
  const protectionLevel = enumName(template?.protectionLevel, PROTECTION_LEVELS)
  const algorithm = enumName(template?.algorithm, ALGORITHMS)
  const rotationPeriod = durationText(key.rotationPeriod)
  const nextRotationTime = isoTime(key.nextRotationTime)
  if (protectionLevel) attributes.protectionLevel = protectionLevel
  if (algorithm) attributes.algorithm = algorithm
  if (rotationPeriod) attributes.rotationPeriod = rotationPeriod
  if (nextRotationTime) attributes.nextRotationTime = nextRotationTime
  return attributes
}

/** gax decodes enums as their names; numbers are looked up in case a transport does not. */
function enumName(value: string | number | null | undefined, values: EnumValues): string {
  if (typeof value === 'string') return value
  if (typeof value !== 'number') return ''
  return Object.entries(values).find(([, number]) => number === value)?.[0] ?? String(value)
}

function isoTime(time: Timestamp): string | undefined {
  if (!time || time.seconds === null || time.seconds === undefined) return undefined
  return new Date(Number(String(time.seconds)) * 1000 + Math.floor((time.nanos ?? 0) / 1e6)).toISOString()
}

/** As protobuf's JSON form writes a Duration: `7776000s`, `1.5s`. */
function durationText(duration: Duration): string | undefined {
  if (!duration || duration.seconds === null || duration.seconds === undefined) return undefined
  const seconds = Number(String(duration.seconds)) + (duration.nanos ?? 0) / 1e9
  return `${seconds}s`
}
