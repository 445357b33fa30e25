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

export function isOperation(value: string): value is Operation {
  return (OPERATIONS as readonly string[]).includes(value)
}
