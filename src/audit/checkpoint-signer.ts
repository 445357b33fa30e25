/**
 * Who signs audit checkpoints: a Cloud KMS asymmetric key version (kms-checkpoint-signer.ts, required
 * in production) or, on the embedded default, an Ed25519 key kept in KEYWRAP_HOME/audit-signing.pem,
 * created on first use and shared by every process on that home.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createFileOnce } from '../support/file-lock.js'
import type { CheckpointAlgorithm } from './checkpoint.js'

export interface CheckpointSigner {
  readonly algorithm: CheckpointAlgorithm
  /** What a checkpoint names the key by (CheckpointStatement.key). */
  readonly keyId: string
  /** The signature of `data`; rejects when it cannot be had within `timeoutMs`. */
  sign(data: Buffer, timeoutMs: number): Promise<Buffer>
  /** The public key, PEM (SPKI), for `keywrap audit verify --public-key`. */
  publicKeyPem(): Promise<string>
  close(): Promise<void>
}

export const DEVELOPMENT_SIGNING_KEY_FILE = 'audit-signing.pem'

export class Ed25519CheckpointSigner implements CheckpointSigner {
  readonly algorithm = 'ED25519'
  readonly keyId: string
  private readonly publicKey: KeyObject

  constructor(private readonly privateKey: KeyObject) {
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('The audit signing key must be an Ed25519 private key.')
    this.publicKey = createPublicKey(privateKey)
    this.keyId = ed25519KeyId(this.publicKey)
  }

  async sign(data: Buffer): Promise<Buffer> {
    return sign(null, data, this.privateKey)
  }

  async publicKeyPem(): Promise<string> {
    return this.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  }

  async close(): Promise<void> {}
}

/** `ed25519:` and the SHA-256 of the public key's SPKI DER, hex. */
export function ed25519KeyId(publicKey: KeyObject): string {
  return `ed25519:${createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')}`
}

/**
 * The embedded default's signing key, KEYWRAP_HOME/audit-signing.pem (PKCS#8, 0600), created on first
 * use; when two processes race, the first key wins and both use it (createFileOnce).
 */
export async function developmentCheckpointSigner(home: string): Promise<Ed25519CheckpointSigner> {
  const path = join(home, DEVELOPMENT_SIGNING_KEY_FILE)
  let pem = await readIfPresent(path)
  if (pem === undefined) {
    await mkdir(home, { recursive: true, mode: 0o700 })
    const { privateKey } = generateKeyPairSync('ed25519')
    await createFileOnce(path, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())
    pem = (await readIfPresent(path))!
  }
  try {
    return new Ed25519CheckpointSigner(createPrivateKey(pem))
  } catch (error) {
    throw new Error(`The audit signing key ${path} cannot be used: ${(error as Error).message}`)
  }
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new Error(`The audit signing key ${path} cannot be read: ${(error as Error).message}`)
  }
}
