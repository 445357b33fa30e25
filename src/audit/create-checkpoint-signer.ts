/**
 * The checkpoint signer KEYWRAP_AUDIT_SIGNING_KEY names: a Cloud KMS key version (its client loaded
 * only then), or the embedded default's Ed25519 key in KEYWRAP_HOME.
 */
import type { Config } from '../config/config.js'
import { developmentCheckpointSigner, type CheckpointSigner } from './checkpoint-signer.js'

export async function createCheckpointSigner(config: Config): Promise<CheckpointSigner> {
  const versionName = config.audit.signingKey
  if (versionName === undefined) return developmentCheckpointSigner(config.home)
  const [{ KmsCheckpointSigner }, { createKmsClient }] = await Promise.all([import('./kms-checkpoint-signer.js'), import('../providers/gcp-kms/kms-client.js')])
  const client = createKmsClient({
    ...(config.kms.emulatorHost && { emulatorHost: config.kms.emulatorHost }),
    ...(config.googleProjectId && { projectId: config.googleProjectId }),
  })
  return new KmsCheckpointSigner(versionName, client, config.kms.callTimeoutMs)
}
