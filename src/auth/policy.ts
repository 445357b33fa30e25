/**
 * Authorisation: principal × key alias × operation, deny by default. Patterns use `*` for any run of
 * characters and are compiled once, at start-up.
 */
import type { Grant } from '../config/config.js'
import { grantsAllowing, isServicePermission, type Permission, type ServicePermission } from '../operations.js'
import type { Principal } from './principal.js'

export interface Policy {
  allows(principal: Principal, alias: string, permission: Permission): boolean
  /** Whether any grant lets the principal use or read this alias (GET /v1/keys lists those). */
  allowsAny(principal: Principal, alias: string): boolean
  /** For operations tied to no key (metrics.read): any grant listing the operation, whatever its keys. */
  allowsUnscoped(principal: Principal, permission: ServicePermission): boolean
}

interface CompiledGrant {
  readonly principals: readonly RegExp[]
  readonly keys: readonly RegExp[]
  readonly operations: ReadonlySet<string>
  readonly issuer: string | undefined
  /** Whether the grant allows anything done to a key, as opposed to only unscoped operations. */
  readonly scoped: boolean
}

export class GrantPolicy implements Policy {
  private readonly grants: readonly CompiledGrant[]

  constructor(grants: readonly Grant[]) {
    this.grants = grants.map((grant) => ({
      principals: grant.principals.map(compilePattern),
      keys: grant.keys.map(compilePattern),
      operations: new Set(grant.operations),
      issuer: grant.issuer,
      scoped: grant.operations.some((operation) => operation === '*' || !isServicePermission(operation)),
    }))
  }

  allows(principal: Principal, alias: string, permission: Permission): boolean {
    return this.grants.some(
      (grant) => grantsPermission(grant, permission) && this.matchesPrincipal(grant, principal) && matchesKey(grant, alias),
    )
  }

  allowsAny(principal: Principal, alias: string): boolean {
    // A grant of metrics.read only must not reveal key aliases through GET /v1/keys.
    return this.grants.some((grant) => grant.scoped && this.matchesPrincipal(grant, principal) && matchesKey(grant, alias))
  }

  allowsUnscoped(principal: Principal, permission: ServicePermission): boolean {
    return this.grants.some((grant) => grantsPermission(grant, permission) && this.matchesPrincipal(grant, principal))
  }

  private matchesPrincipal(grant: CompiledGrant, principal: Principal): boolean {
    return (
      (grant.issuer === undefined || grant.issuer === principal.issuer) &&
      grant.principals.some((pattern) => pattern.test(principal.id))
    )
  }
}

/** The embedded default without a policy section: every principal of the development issuer may do everything. */
export function developmentPolicy(devIssuer: string): Policy {
  return new GrantPolicy([{ principals: ['*'], keys: ['*'], operations: ['*'], issuer: devIssuer }])
}

function grantsPermission(grant: CompiledGrant, permission: Permission): boolean {
  return grant.operations.has('*') || grantsAllowing(permission).some((allowing) => grant.operations.has(allowing))
}

function matchesKey(grant: CompiledGrant, alias: string): boolean {
  return grant.keys.some((pattern) => pattern.test(alias))
}

function compilePattern(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${escaped.join('.*')}$`, 's')
}
