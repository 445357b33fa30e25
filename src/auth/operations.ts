/** What a grant can allow. Batch routes need the operation of their items. */
export const OPERATIONS = [
  'generateDataKey',
  'wrap',
  'unwrap',
  'rewrap',
  'keys.read',
  'cache.purge',
  'metrics.read',
] as const

export type Operation = (typeof OPERATIONS)[number]

/** The operations that hand out or use key material; each access to one is audited. */
export type KeyOperation = 'generateDataKey' | 'wrap' | 'unwrap' | 'rewrap'

/** Operations tied to no key alias: a grant's `keys` do not limit them. */
export const UNSCOPED_OPERATIONS = ['metrics.read'] as const satisfies readonly Operation[]

export type UnscopedOperation = (typeof UNSCOPED_OPERATIONS)[number]

export function isOperation(value: string): value is Operation {
  return (OPERATIONS as readonly string[]).includes(value)
}

export function isUnscopedOperation(value: string): value is UnscopedOperation {
  return (UNSCOPED_OPERATIONS as readonly string[]).includes(value)
}
