/**
 * local://NAME: a KEK from the local keyring file, AES-256-GCM. Its ciphertext carries the version
 * that made it (as Cloud KMS ciphertexts do), authenticated together with the caller's AAD:
 *   uint32 version | 12-byte IV | ciphertext | 16-byte tag
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, type KeyObject } from 'node:crypto'
import { randomBytesPooled } from '../../crypto/random-pool.js'
import { KeywrapError } from '../../errors.js'
import { assertUsableVersion, type DecryptResult, type EncryptResult, type KeyDescription, type KeyProvider, type KeyVersionInfo } from '../key-provider.js'
import { RefreshOrder } from '../refresh-order.js'
import type { KeyringFile, StoredKey } from './keyring-file.js'

const IV_BYTES = 12
const TAG_BYTES = 16
const HEADER_BYTES = 4

interface LoadedKey {
  readonly description: KeyDescription
  readonly secrets: ReadonlyMap<number, KeyObject>
  readonly identity: string
}

const IDENTITY_LABEL = 'keywrap/local/key-identity/v1'

export class LocalKeyProvider implements KeyProvider {
  readonly uri: string
  private readonly name: string
  private readonly keyring: KeyringFile
  /** The start of every AAD this key binds: the format and the keyring name. */
  private readonly aadPrefix: Buffer
  private loaded: LoadedKey | undefined
  private readonly refreshes = new RefreshOrder()
  private stopWatching: (() => void) | undefined

  constructor(name: string, keyring: KeyringFile) {
    this.name = name
    this.uri = `local://${name}`
    this.keyring = keyring
    this.aadPrefix = Buffer.from(`keywrap/local/v1\0${name}\0`, 'utf8')
  }

  async encrypt(plaintext: Buffer, aad: Buffer): Promise<EncryptResult> {
    const { description, secrets } = this.current()
    const version = description.primaryVersion
    const secret = this.usableSecret(secrets, description, version)
    const header = Buffer.alloc(HEADER_BYTES)
    header.writeUInt32BE(version)
    const iv = randomBytesPooled(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', secret, iv)
    cipher.setAAD(this.boundAad(header, aad))
    const ciphertext = Buffer.concat([header, iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
    return { ciphertext, version }
  }

  async decrypt(ciphertext: Buffer, aad: Buffer, claimedVersion: number): Promise<DecryptResult> {
    if (ciphertext.length < HEADER_BYTES + IV_BYTES + TAG_BYTES + 1) throw new KeywrapError('cannot_unwrap')
    const header = ciphertext.subarray(0, HEADER_BYTES)
    const version = header.readUInt32BE()
    if (version !== claimedVersion) throw new KeywrapError('cannot_unwrap')
    const { description, secrets } = this.current()
    const secret = this.usableSecret(secrets, description, version)
    const iv = ciphertext.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES)
    const tag = ciphertext.subarray(ciphertext.length - TAG_BYTES)
    const decipher = createDecipheriv('aes-256-gcm', secret, iv)
    decipher.setAAD(this.boundAad(header, aad))
    decipher.setAuthTag(tag)
    try {
      const body = ciphertext.subarray(HEADER_BYTES + IV_BYTES, ciphertext.length - TAG_BYTES)
      return { plaintext: Buffer.concat([decipher.update(body), decipher.final()]), version }
    } catch {
      throw new KeywrapError('cannot_unwrap')
    }
  }

  describe(): KeyDescription {
    return this.current().description
  }

  /**
   * The URI and a keyed fingerprint (an HMAC of a fixed label under the key's oldest version that
   * still has material): two development keyrings each have a local://default, with different keys.
   */
  identity(): string {
    return this.current().identity
  }

  async refresh(): Promise<KeyDescription> {
    const read = this.refreshes.begin()
    const stored = await this.keyring.readKey(this.name)
    if (!stored) throw new Error(`The local keyring ${this.keyring.path} has no key named ${this.name}.`)
    if (this.refreshes.isNewest(read)) this.loaded = this.load(stored)
    this.stopWatching ??= this.keyring.watch(() => void this.refresh().catch(() => undefined))
    return this.current().description
  }

  async probe(): Promise<void> {
    const aad = Buffer.from('keywrap/probe')
    const { ciphertext, version } = await this.encrypt(Buffer.alloc(32), aad)
    await this.decrypt(ciphertext, aad, version)
  }

  async close(): Promise<void> {
    this.stopWatching?.()
    this.stopWatching = undefined
  }

  private current(): LoadedKey {
    if (!this.loaded) throw new Error(`${this.uri} is used before its first refresh.`)
    return this.loaded
  }

  private usableSecret(secrets: ReadonlyMap<number, KeyObject>, description: KeyDescription, version: number): KeyObject {
    const info = description.versions.find((v) => v.version === version)
    if (!info) throw new KeywrapError('cannot_unwrap')
    assertUsableVersion(version, info.state)
    const secret = secrets.get(version)
    if (!secret) throw new KeywrapError('key_version_destroyed', `Key version ${version} is destroyed.`)
    return secret
  }

  /** The keyring name and version are bound too, so a ciphertext cannot move between local keys. */
  private boundAad(header: Buffer, aad: Buffer): Buffer {
    return Buffer.concat([this.aadPrefix, header, aad])
  }

  private load(stored: StoredKey): LoadedKey {
    const versions: KeyVersionInfo[] = stored.versions.map((v) => ({
      version: v.version,
      name: `${this.uri}/versions/${v.version}`,
      state: v.state,
      createTime: v.createTime,
    }))
    const secrets = new Map<number, KeyObject>()
    for (const v of stored.versions) {
      if (v.material) secrets.set(v.version, createSecretKey(Buffer.from(v.material, 'base64')))
    }
    const oldest = [...secrets.keys()].sort((a, b) => a - b)[0]
    const fingerprint = oldest === undefined ? 'none' : createHmac('sha256', secrets.get(oldest)!).update(IDENTITY_LABEL).digest('base64url').slice(0, 22)
    return {
      identity: `${this.uri}#${fingerprint}`,
      description: {
        uri: this.uri,
        provider: 'local',
        primaryVersion: stored.primary,
        versions,
        refreshedAt: new Date().toISOString(),
      },
      secrets,
    }
  }
}
