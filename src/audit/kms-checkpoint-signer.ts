/**
 * Audit checkpoints signed by a Cloud KMS asymmetric key version (EC_SIGN_P256_SHA256) through
 * AsymmetricSign: the SHA-256 digest goes out with its CRC32C, and the signature (DER ECDSA) comes back
 * checked against its own. The private key never leaves Cloud KMS, and every signature is a call that
 * Cloud KMS's Data Access audit logs record: a record outside keywrap's trail of every checkpoint.
 */
import { createHash } from 'node:crypto'
import type { KeyManagementServiceClient } from '@google-cloud/kms/build/src/v1/key_management_service_client.js'
import { checksumOf, matches, toBuffer } from '../providers/gcp-kms/integrity.js'
import type { CheckpointSigner } from './checkpoint-signer.js'

export const KMS_SIGNING_ALGORITHM = 'EC_SIGN_P256_SHA256'

/** The client methods the signer uses; a KeyManagementServiceClient in production. */
export type SigningKmsClient = Pick<KeyManagementServiceClient, 'asymmetricSign' | 'getPublicKey' | 'close'>

export class KmsCheckpointSigner implements CheckpointSigner {
  readonly algorithm = KMS_SIGNING_ALGORITHM
  /** projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N */
  readonly keyId: string

  constructor(
    versionName: string,
    private readonly client: SigningKmsClient,
    private readonly callTimeoutMs: number,
  ) {
    this.keyId = versionName
  }

  async sign(data: Buffer, timeoutMs: number): Promise<Buffer> {
    const digest = createHash('sha256').update(data).digest()
    // retry: null: one attempt; a checkpoint that fails is taken again at the next interval.
    const [response] = await this.client.asymmetricSign(
      { name: this.keyId, digest: { sha256: digest }, digestCrc32c: checksumOf(digest) },
      { retry: null, timeout: Math.min(timeoutMs, this.callTimeoutMs) },
    )
    if (response.verifiedDigestCrc32c !== true) throw new Error('Cloud KMS AsymmetricSign did not verify the digest checksum')
    if (response.name && response.name !== this.keyId) throw new Error(`Cloud KMS AsymmetricSign answered for ${response.name}, not ${this.keyId}`)
    const signature = toBuffer(response.signature)
    if (!matches(signature, response.signatureCrc32c)) throw new Error('Cloud KMS AsymmetricSign returned a signature that does not match its checksum')
    return signature
  }

  /** The version's public key, PEM; refuses a key of another algorithm. */
  async publicKeyPem(): Promise<string> {
    const [key] = await this.client.getPublicKey({ name: this.keyId }, { retry: null, timeout: this.callTimeoutMs })
    const pem = key.pem ?? ''
    if (!matches(Buffer.from(pem, 'utf8'), key.pemCrc32c)) throw new Error('Cloud KMS GetPublicKey returned a key that does not match its checksum')
    if (key.algorithm !== KMS_SIGNING_ALGORITHM) {
      throw new Error(`${this.keyId} is a ${String(key.algorithm)} key; audit checkpoints need ${KMS_SIGNING_ALGORITHM} (purpose asymmetric-signing)`)
    }
    return pem
  }

  async close(): Promise<void> {
    await this.client.close()
  }
}
