/**
 * The encryption context as bytes, encoded as the service encodes it inside its own AAD
 * (src/crypto/context.ts): a uint32 count, then each entry sorted by the UTF-8 bytes of its name,
 * name and value each as a uint32 length and UTF-8. Key order never matters, and no two different
 * contexts encode alike.
 */
import { KeywrapError } from './keywrap-error.js'
import type { EncryptionContext } from './keywrap-client.js'

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

export function encodeContext(context: EncryptionContext | undefined): Buffer {
  const entries = Object.entries(context ?? {}).map(([name, value]) => {
    if (typeof value !== 'string') throw new KeywrapError('invalid_request', { detail: `context value of "${name}" is not a string` })
    // A lone surrogate would encode as U+FFFD, like another string: refused, as the service does.
    if (LONE_SURROGATE.test(name) || LONE_SURROGATE.test(value))
      throw new KeywrapError('invalid_request', { detail: 'context holds a string that is not well-formed UTF-16' })
    return [Buffer.from(name, 'utf8'), Buffer.from(value, 'utf8')] as const
  })
  entries.sort(([a], [b]) => Buffer.compare(a, b))
  const parts: Buffer[] = [uint32(entries.length)]
  for (const [name, value] of entries) parts.push(uint32(name.length), name, uint32(value.length), value)
  return Buffer.concat(parts)
}

/** The context as the service is sent it: none when empty. */
export function contextForService(context: EncryptionContext | undefined): { context?: EncryptionContext } {
  return context && Object.keys(context).length > 0 ? { context } : {}
}

function uint32(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(4)
  bytes.writeUInt32BE(value)
  return bytes
}
