/**
 * The alias, the KEK version and the encryption context, encoded as the additional authenticated data
 * (AAD) that binds a wrapped key to them. Canonical: entries sorted by the UTF-8 bytes of their names,
 * every string length-prefixed, so key order never matters and no two different contexts encode alike.
 * The version is bound because Cloud KMS ciphertexts do not authenticate the version a wrapped key
 * claims; with it in the AAD, a relabelled wrapped key does not decrypt.
 */
import { lengthPrefixed, uint32 } from './length-prefixed.js'

export type EncryptionContext = Readonly<Record<string, string>>

const DOMAIN = Buffer.from('keywrap/aad/v1', 'utf8')

/** Whether every name and value is well-formed UTF-16: a lone surrogate would encode as U+FFFD, like others. */
export function isWellFormedContext(context: EncryptionContext | undefined): boolean {
  return Object.entries(context ?? {}).every(([name, value]) => isWellFormed(name) && isWellFormed(value))
}

function isWellFormed(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text)
}

export function encodeAad(alias: string, version: number, context: EncryptionContext | undefined): Buffer {
  const entries = !context
    ? []
    : Object.entries(context)
        .map(([name, value]) => [Buffer.from(name, 'utf8'), Buffer.from(value, 'utf8')] as const)
        .sort(([a], [b]) => Buffer.compare(a, b))
  return Buffer.concat([
    DOMAIN,
    lengthPrefixed(alias),
    uint32(version),
    uint32(entries.length),
    ...entries.flatMap(([name, value]) => [lengthPrefixed(name), lengthPrefixed(value)]),
  ])
}
