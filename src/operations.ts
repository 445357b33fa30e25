/**
 * The operations catalogue: for each operation of openapi.yaml, by its operationId, whether it needs a
 * bearer token, the grant that allows it, what its audit entries call it and what it costs against the
 * caller's rate limit. Routes, the policy, the audit trail and the rate limit all read it: the names
 * one operation has in each of them are joined here and nowhere else. tsc checks that it lists exactly
 * the operations of openapi.yaml.
 */
import type { operations } from './http/openapi-types.js'

/**
 * What a grant can allow (the `operations` of a policy grant). `key`: done to a key alias, so a grant's
 * `keys` limit it; `service`: tied to no key, so any grant listing it allows it, whatever its keys.
 */
export const PERMISSIONS = {
  generateDataKey: 'key',
  generateDataKeyWithoutPlaintext: 'key',
  wrap: 'key',
  unwrap: 'key',
  rewrap: 'key',
  'keys.read': 'key',
  'cache.purge': 'key',
  'metrics.read': 'service',
} as const satisfies Readonly<Record<string, 'key' | 'service'>>

export type Permission = keyof typeof PERMISSIONS

/**
 * Permissions a grant of another one gives too: a grant of generateDataKey (plaintext and wrapped)
 * covers generateDataKeyWithoutPlaintext (wrapped only), never the other way round.
 */
const IMPLIES: Partial<Readonly<Record<string, readonly Permission[]>>> = {
  generateDataKey: ['generateDataKeyWithoutPlaintext'],
}

/** What a grant of `operation` allows: itself, and the permissions it implies (read once, when grants are compiled). */
export function permissionsGrantedBy(operation: string): readonly string[] {
  return [operation, ...(IMPLIES[operation] ?? [])]
}
export type ServicePermission = { [P in Permission]: (typeof PERMISSIONS)[P] extends 'service' ? P : never }[Permission]

/** What an audit entry says was done: each use of key material, and a cache purge. */
export type AuditOperation = 'generateDataKey' | 'generateDataKeyWithoutPlaintext' | 'wrap' | 'unwrap' | 'rewrap' | 'cache.purge'

/** A public operation: no token, no grant, no audit entry, no rate limit. */
export interface PublicEntry {
  readonly authenticates: false
}

/** An operation that needs a bearer token (openapi.yaml's `security`). */
export interface AuthenticatedEntry {
  readonly authenticates: true
  /** The grant operation that allows it; absent: no single grant does (listKeys lists what any grant reaches). */
  readonly permission?: Permission
  /** What its audit entries name it; absent: not audited. */
  readonly audit?: AuditOperation
  /**
   * Its weight against the caller's rate limit: 1, or `items` for a batch (as many as its items).
   */
  readonly cost: 1 | 'items'
}

export type OperationEntry = PublicEntry | AuthenticatedEntry

/** An operation that is one access to a key: authorised by its permission and audited under its name. */
export interface KeyAccessEntry extends AuthenticatedEntry {
  readonly permission: Permission
  readonly audit: AuditOperation
}

export const OPERATIONS = {
  generateDataKey: { authenticates: true, permission: 'generateDataKey', audit: 'generateDataKey', cost: 1 },
  wrap: { authenticates: true, permission: 'wrap', audit: 'wrap', cost: 1 },
  unwrap: { authenticates: true, permission: 'unwrap', audit: 'unwrap', cost: 1 },
  rewrap: { authenticates: true, permission: 'rewrap', audit: 'rewrap', cost: 1 },
  batchUnwrap: { authenticates: true, permission: 'unwrap', audit: 'unwrap', cost: 'items' },
  batchRewrap: { authenticates: true, permission: 'rewrap', audit: 'rewrap', cost: 'items' },
  purgeCache: { authenticates: true, permission: 'cache.purge', audit: 'cache.purge', cost: 1 },
  listKeys: { authenticates: true, cost: 1 },
  getKey: { authenticates: true, permission: 'keys.read', cost: 1 },
  getMetrics: { authenticates: true, permission: 'metrics.read', cost: 1 },
  getHealth: { authenticates: false },
  getReadiness: { authenticates: false },
  getOpenApi: { authenticates: false },
} as const satisfies { readonly [Id in keyof operations]: OperationEntry }

export type OperationId = keyof typeof OPERATIONS

/**
 * generateDataKey with `"includePlaintext": false`: its own permission (for producers that must never
 * see a DEK) and its own audit name, whichever grant allowed it.
 */
export const GENERATE_WITHOUT_PLAINTEXT = {
  authenticates: true,
  permission: 'generateDataKeyWithoutPlaintext',
  audit: 'generateDataKeyWithoutPlaintext',
  cost: 1,
} as const satisfies KeyAccessEntry

/** Whether the operation is one access to a key (a permission and an audit name), as the rate limit's refusals are audited. */
export function isKeyAccess(entry: OperationEntry): entry is KeyAccessEntry {
  return entry.authenticates && entry.permission !== undefined && entry.audit !== undefined
}

export function isPermission(value: string): value is Permission {
  return Object.hasOwn(PERMISSIONS, value)
}

export function isServicePermission(value: string): value is ServicePermission {
  return isPermission(value) && PERMISSIONS[value] === 'service'
}
