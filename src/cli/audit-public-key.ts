/** `keywrap audit public-key`: the PEM public key of the key that signs audit checkpoints, for `audit verify --public-key`. */
import { createCheckpointSigner } from '../audit/create-checkpoint-signer.js'
import { settleMetadataServerDetection } from '../config/google-environment.js'
import { loadConfig } from '../config/load-config.js'
import { parseCommandLine, UsageError, type Command } from './command.js'

export const auditPublicKeyCommand: Command = {
  name: 'audit public-key',
  summary: "print the public key (PEM) that verifies the audit trail's signed checkpoints",
  arguments: '',
  help: `Reads the configuration like the server. With KEYWRAP_AUDIT_SIGNING_KEY (a Cloud KMS key version,
gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N) the key comes from Cloud
KMS's GetPublicKey (permission cloudkms.cryptoKeyVersions.viewPublicKey); without it, from the Ed25519
key in KEYWRAP_HOME (created if it is not there yet). Then:

  npx keywrap audit public-key > audit.pem
  npx keywrap audit verify --public-key audit.pem trail.jsonl

The key that signed is also named in every checkpoint (its "key" field).`,
  async run(args) {
    const { positionals } = parseCommandLine(args, {})
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`)
    const config = loadConfig()
    settleMetadataServerDetection()
    const signer = await createCheckpointSigner(config)
    try {
      const pem = await signer.publicKeyPem()
      process.stdout.write(pem.endsWith('\n') ? pem : `${pem}\n`)
    } finally {
      await signer.close()
    }
    // A client library may keep a handle open a moment after close().
    setTimeout(() => process.exit(), 500).unref()
  },
}
