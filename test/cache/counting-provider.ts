/**
 * For tests only: a KeyProvider over one AES-256-GCM key that counts its calls. Several instances
 * built from one `secret` stand for one KEK used by several app instances, each with its own count.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { KeywrapError } from '../../src/errors.js'
import type { DecryptResult, EncryptResult, KeyDescription, KeyProvider } from '../../src/providers/key-provider.js'

export class CountingProvider implements KeyProvider {
  readonly uri = 'test://counting'
  readonly secret: Buffer
  encrypts = 0
  decrypts = 0
  /** Set to make every call fail with it. */
  failure: Error | undefined

  constructor(secret: Buffer = randomBytes(32)) {
    this.secret = secret
  }

  get calls(): number {
    return this.encrypts + this.decrypts
  }

  async encrypt(plaintext: Buffer, aad: Buffer): Promise<EncryptResult> {
    this.encrypts++
    if (this.failure) throw this.failure
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.secret, iv)
    cipher.setAAD(aad)
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
    return { ciphertext: Buffer.concat([iv, body, cipher.getAuthTag()]), version: 1 }
  }

  async decrypt(ciphertext: Buffer, aad: Buffer, version: number): Promise<DecryptResult> {
    this.decrypts++
    if (this.failure) throw this.failure
    if (version !== 1 || ciphertext.length < 29) throw new KeywrapError('cannot_unwrap')
    const decipher = createDecipheriv('aes-256-gcm', this.secret, ciphertext.subarray(0, 12))
    decipher.setAAD(aad)
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16))
    try {
      return { plaintext: Buffer.concat([decipher.update(ciphertext.subarray(12, ciphertext.length - 16)), decipher.final()]), version }
    } catch {
      throw new KeywrapError('cannot_unwrap')
    }
  }

  describe(): KeyDescription {
    return {
      uri: this.uri,
      provider: 'local',
      primaryVersion: 1,
      versions: [{ version: 1, name: `${this.uri}/versions/1`, state: 'ENABLED' }],
      refreshedAt: new Date(0).toISOString(),
    }
  }

  async refresh(): Promise<KeyDescription> {
    return this.describe()
  }

  async probe(): Promise<void> {}

  async close(): Promise<void> {}
}
