/** Cloud KMS resource names: projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/N]. */

const CRYPTO_KEY_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/

export function isCryptoKeyName(name: string): boolean {
  return CRYPTO_KEY_NAME.test(name)
}

/** The version number of `versionName` when it is a version of `keyName`; undefined otherwise. */
export function versionNumberOf(keyName: string, versionName: string | null | undefined): number | undefined {
  const prefix = `${keyName}/cryptoKeyVersions/`
  if (!versionName?.startsWith(prefix)) return undefined
  const id = versionName.slice(prefix.length)
  return /^[1-9][0-9]{0,9}$/.test(id) ? Number(id) : undefined
}
