/** Builds one KeyProvider per configured alias from its URI. */
import type { Config } from '../config/config.js'
import type { Metrics } from '../metrics/metrics.js'
import type { KeyProvider } from './key-provider.js'
import { KeyRegistry } from './key-registry.js'
import { KeyringFile } from './local/keyring-file.js'
import { LocalKeyProvider } from './local/local-provider.js'
import type { Logger } from '../support/logger.js'

export async function createKeyRegistry(config: Config, options: { metrics?: Metrics; logger?: Logger } = {}): Promise<KeyRegistry> {
  const keyring = new KeyringFile(config.home)
  const providers = new Map<string, KeyProvider>()
  const localNames = new Set<string>()
  for (const [alias, uri] of Object.entries(config.keys)) {
    if (uri.startsWith('local://')) {
      const name = uri.slice('local://'.length)
      localNames.add(name)
      providers.set(alias, new LocalKeyProvider(name, keyring))
    } else {
      providers.set(alias, await createCloudKmsProvider(config, uri, options))
    }
  }
  if (localNames.size > 0) await keyring.ensureKeys([...localNames])
  return new KeyRegistry(providers)
}

/** Loaded only when a gcp-kms:// key is configured: the Cloud KMS client takes ~300 ms to import. */
async function createCloudKmsProvider(config: Config, uri: string, options: { metrics?: Metrics; logger?: Logger }): Promise<KeyProvider> {
  const [{ GcpKmsKeyProvider }, { createKmsClient }] = await Promise.all([import('./gcp-kms/gcp-kms-provider.js'), import('./gcp-kms/kms-client.js')])
  return new GcpKmsKeyProvider({
    keyName: uri.slice('gcp-kms://'.length),
    // One client per key: a provider closes the client it was given.
    client: createKmsClient({
      ...(config.kms.emulatorHost && { emulatorHost: config.kms.emulatorHost }),
      ...(config.googleProjectId && { projectId: config.googleProjectId }),
    }),
    callTimeoutMs: config.kms.callTimeoutMs,
    totalBudgetMs: config.kms.budgetMs,
    ...(options.metrics && { metrics: options.metrics }),
    ...(options.logger && { logger: options.logger }),
  })
}
