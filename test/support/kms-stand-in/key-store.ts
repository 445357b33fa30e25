// In-memory CryptoKeys and their versions, plus the programmatic API tests use to
// arrange state. Programmatic misuse throws plain Errors; RPC-facing lookups
// return undefined and leave the gRPC error to the handlers.
import { randomBytes } from 'node:crypto'
import { KEY_ID_BYTES } from './ciphertext.js'
import { timestamp, type CryptoKeyResource, type CryptoKeyVersionResource, type VersionState } from './messages.js'
import { isCryptoKeyName, versionName } from './resource-names.js'

/** Cloud KMS default for CryptoKey.destroy_scheduled_duration. */
const DESTROY_SCHEDULED_SECONDS = 30 * 24 * 60 * 60

export interface StoredVersion {
  readonly version: number
  state: VersionState
  /** AES-256 key; wiped when the version is DESTROYED. */
  material: Buffer | undefined
  readonly createTime: Date
  destroyTime: Date | undefined
  destroyEventTime: Date | undefined
}

export interface StoredKey {
  readonly name: string
  readonly keyId: Buffer
  readonly createTime: Date
  readonly versions: Map<number, StoredVersion>
  primary: number
  rotationPeriodSeconds: number | undefined
  nextRotationTime: Date | undefined
  labels: Record<string, string>
}

export interface CreateKeyOptions {
  /** How many ENABLED versions to create, or the state of each (version 1 first). Default 1. */
  versions?: number | readonly VersionState[]
  /** Primary version number. Default: the highest-numbered ENABLED version. */
  primary?: number
  rotationPeriodSeconds?: number
  nextRotationTime?: Date
  labels?: Record<string, string>
  createTime?: Date
}

export interface KeySnapshot {
  name: string
  primary: number
  primaryName: string
  versions: Array<{ version: number; name: string; state: VersionState }>
}

export class KeyStore {
  readonly #keys = new Map<string, StoredKey>()

  createKey(name: string, options: CreateKeyOptions = {}): KeySnapshot {
    if (!isCryptoKeyName(name)) {
      throw new Error(`Not a CryptoKey name: ${name}`)
    }
    if (this.#keys.has(name)) {
      throw new Error(`CryptoKey ${name} already exists`)
    }
    const states = versionStates(options.versions ?? 1)
    if (states.length === 0) {
      throw new Error('An ENCRYPT_DECRYPT CryptoKey needs at least one version')
    }
    const createTime = options.createTime ?? new Date()
    const key: StoredKey = {
      name,
      keyId: randomBytes(KEY_ID_BYTES),
      createTime,
      versions: new Map(),
      primary: 0,
      rotationPeriodSeconds: options.rotationPeriodSeconds,
      nextRotationTime: options.nextRotationTime,
      labels: { ...options.labels },
    }
    states.forEach((state, index) => {
      const version = newVersion(index + 1, createTime)
      key.versions.set(version.version, version)
      applyState(version, state)
    })
    key.primary = options.primary ?? highestEnabledVersion(key) ?? states.length
    if (!key.versions.has(key.primary)) {
      throw new Error(`Primary version ${key.primary} does not exist in ${name}`)
    }
    this.#keys.set(name, key)
    return this.getKey(name)
  }

  /** Adds a new ENABLED version and makes it primary; returns its version number. */
  rotate(name: string): number {
    const key = this.#mustGet(name)
    const now = new Date()
    const version = newVersion(Math.max(...key.versions.keys()) + 1, now)
    key.versions.set(version.version, version)
    key.primary = version.version
    if (key.rotationPeriodSeconds !== undefined) {
      key.nextRotationTime = new Date(now.getTime() + key.rotationPeriodSeconds * 1000)
    }
    return version.version
  }

  setState(name: string, version: number, state: VersionState): void {
    const stored = this.#mustGetVersion(name, version)
    if (stored.state === 'DESTROYED' && state !== 'DESTROYED') {
      throw new Error(`${versionName(name, version)} is DESTROYED; its key material is gone`)
    }
    applyState(stored, state)
  }

  /** Like UpdateCryptoKeyPrimaryVersion: only an ENABLED version can become primary. */
  setPrimary(name: string, version: number): void {
    const stored = this.#mustGetVersion(name, version)
    if (stored.state !== 'ENABLED') {
      throw new Error(`${versionName(name, version)} is ${stored.state}; only an ENABLED version can be primary`)
    }
    this.#mustGet(name).primary = version
  }

  getKey(name: string): KeySnapshot {
    const key = this.#mustGet(name)
    return {
      name,
      primary: key.primary,
      primaryName: versionName(name, key.primary),
      versions: [...key.versions.values()].map((v) => ({
        version: v.version,
        name: versionName(name, v.version),
        state: v.state,
      })),
    }
  }

  keyNames(): string[] {
    return [...this.#keys.keys()]
  }

  find(name: string): StoredKey | undefined {
    return this.#keys.get(name)
  }

  #mustGet(name: string): StoredKey {
    const key = this.#keys.get(name)
    if (!key) throw new Error(`Unknown CryptoKey ${name}`)
    return key
  }

  #mustGetVersion(name: string, version: number): StoredVersion {
    const stored = this.#mustGet(name).versions.get(version)
    if (!stored) throw new Error(`Unknown CryptoKeyVersion ${versionName(name, version)}`)
    return stored
  }
}

export function cryptoKeyResource(key: StoredKey): CryptoKeyResource {
  const primary = key.versions.get(key.primary)
  return {
    name: key.name,
    primary: primary ? cryptoKeyVersionResource(key, primary) : null,
    purpose: 'ENCRYPT_DECRYPT',
    createTime: timestamp(key.createTime),
    ...(key.nextRotationTime && { nextRotationTime: timestamp(key.nextRotationTime) }),
    ...(key.rotationPeriodSeconds !== undefined && {
      rotationPeriod: { seconds: key.rotationPeriodSeconds, nanos: 0 },
    }),
    versionTemplate: { protectionLevel: 'SOFTWARE', algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION' },
    labels: { ...key.labels },
    destroyScheduledDuration: { seconds: DESTROY_SCHEDULED_SECONDS, nanos: 0 },
  }
}

export function cryptoKeyVersionResource(key: StoredKey, version: StoredVersion): CryptoKeyVersionResource {
  return {
    name: versionName(key.name, version.version),
    state: version.state,
    protectionLevel: 'SOFTWARE',
    algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
    createTime: timestamp(version.createTime),
    generateTime: timestamp(version.createTime),
    ...(version.destroyTime && { destroyTime: timestamp(version.destroyTime) }),
    ...(version.destroyEventTime && { destroyEventTime: timestamp(version.destroyEventTime) }),
  }
}

function versionStates(versions: number | readonly VersionState[]): readonly VersionState[] {
  return typeof versions === 'number' ? Array.from({ length: versions }, () => 'ENABLED' as const) : versions
}

function newVersion(version: number, createTime: Date): StoredVersion {
  return {
    version,
    state: 'ENABLED',
    material: randomBytes(32),
    createTime,
    destroyTime: undefined,
    destroyEventTime: undefined,
  }
}

function highestEnabledVersion(key: StoredKey): number | undefined {
  const enabled = [...key.versions.values()].filter((v) => v.state === 'ENABLED').map((v) => v.version)
  return enabled.length > 0 ? Math.max(...enabled) : undefined
}

function applyState(version: StoredVersion, state: VersionState): void {
  const now = new Date()
  version.state = state
  switch (state) {
    case 'ENABLED':
    case 'DISABLED':
      version.destroyTime = undefined
      break
    case 'DESTROY_SCHEDULED':
      version.destroyTime = new Date(now.getTime() + DESTROY_SCHEDULED_SECONDS * 1000)
      break
    case 'DESTROYED':
      version.material = undefined
      version.destroyTime ??= now
      version.destroyEventTime = now
      break
  }
}
