/**
 * Authorisation: principal × key alias × operation, deny by default. Patterns use `*` for any run of
 * characters and are compiled once, at start-up.
 */
import type { Grant } from '../config/config.js'
import type { Operation } from './operations.js'
import type { Principal } from './principal.js'

export interface Policy {
  allows(principal: Principal, alias: string, operation: Operation): boolean
  /** Whether any grant lets the principal do anything with this alias (GET /v1/keys lists those). */
  allowsAny(principal: Principal, alias: string): boolean
}

interface CompiledGrant {
  readonly principals: readonly RegExp[]
  readonly keys: readonly RegExp[]
  readonly operations: ReadonlySet<string>
  readonly issuer: string | undefined
}

export class GrantPolicy implements Policy {
  private readonly grants: readonly CompiledGrant[]

  constructor(grants: readonly Grant[]) {
    this.grants = grants.map((grant) => ({
      principals: grant.principals.map(compilePattern),
      keys: grant.keys.map(compilePattern),
      operations: new Set(grant.operations),
      issuer: grant.issuer,
    }))
  }

  allows(principal: Principal, alias: string, operation: Operation): boolean {
    return this.grants.some(
      (grant) =>
        (grant.operations.has('*') || grant.operations.has(operation)) && this.matches(grant, principal, alias),
    )
  }

  allowsAny(principal: Principal, alias: string): boolean {
    return this.grants.some((grant) => this.matches(grant, principal, alias))
  }

  private matches(grant: CompiledGrant, principal: Principal, alias: string): boolean {
    return (
      (grant.issuer === undefined || grant.issuer === principal.issuer) &&
      grant.principals.some((pattern) => pattern.test(principal.id)) &&
      grant.keys.some((pattern) => pattern.test(alias))
    )
  }
}

/** The embedded default without a policy section: every principal of the development issuer may do everything. */
export function developmentPolicy(devIssuer: string): Policy {
  return new GrantPolicy([{ principals: ['*'], keys: ['*'], operations: ['*'], issuer: devIssuer }])
}

function compilePattern(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${escaped.join('.*')}$`, 's')
}
