/** Builds one KeyProvider per configured alias from its URI. */
import type { Config } from '../config/config.js'
import type { KeyProvider } from './key-provider.js'
import { KeyRegistry } from './key-registry.js'
import { KeyringFile } from './local/keyring-file.js'
import { LocalKeyProvider } from './local/local-provider.js'

export async function createKeyRegistry(config: Config): Promise<KeyRegistry> {
  const keyring = new KeyringFile(config.home)
  const providers = new Map<string, KeyProvider>()
  const localNames = new Set<string>()
  for (const [alias, uri] of Object.entries(config.keys)) {
    if (uri.startsWith('local://')) {
      const name = uri.slice('local://'.length)
      localNames.add(name)
      providers.set(alias, new LocalKeyProvider(name, keyring))
    } else {
      throw new Error(`keys.${alias}: the gcp-kms provider is not available in this build yet (${uri}).`)
    }
  }
  if (localNames.size > 0) await keyring.ensureKeys([...localNames])
  return new KeyRegistry(providers)
}
