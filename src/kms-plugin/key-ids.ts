/**
 * The KMS v2 `key_id` of a KEK version: a hash of the alias and the version's full name, so it names
 * the version without showing the KMS resource name. A version's name is never given to another
 * version, so a key_id changes with the primary and never takes an old value again.
 */
import { createHash } from 'node:crypto'
import type { KeyDescription, KeyVersionInfo } from '../providers/key-provider.js'

const KEY_ID_PREFIX = 'keywrap-v1-'

export function keyIdOf(alias: string, versionName: string): string {
  const digest = createHash('sha256').update(`keywrap/kms-plugin/key-id\0${alias}\0${versionName}`, 'utf8').digest('base64url')
  return `${KEY_ID_PREFIX}${digest}`
}

/** The key_ids of one alias's versions, computed once per description the refresher reads. */
export class KeyIdDirectory {
  private readonly alias: string
  private readonly byDescription = new WeakMap<KeyDescription, { primary: string; versions: ReadonlyMap<string, KeyVersionInfo> }>()

  constructor(alias: string) {
    this.alias = alias
  }

  /** The key_id of the description's primary version. */
  primaryKeyId(description: KeyDescription): string {
    return this.of(description).primary
  }

  /** The version a key_id names, or undefined when no version of the description has it. */
  versionOf(description: KeyDescription, keyId: string): KeyVersionInfo | undefined {
    return this.of(description).versions.get(keyId)
  }

  private of(description: KeyDescription) {
    let known = this.byDescription.get(description)
    if (!known) {
      const versions = new Map(description.versions.map((version) => [keyIdOf(this.alias, version.name), version]))
      const primary = description.versions.find((version) => version.version === description.primaryVersion)
      // A primary the listing does not carry yet (learnt from an Encrypt) is named as the provider names it.
      const primaryName = primary?.name ?? `${description.uri}/versions/${description.primaryVersion}`
      known = { primary: keyIdOf(this.alias, primaryName), versions }
      this.byDescription.set(description, known)
    }
    return known
  }
}
