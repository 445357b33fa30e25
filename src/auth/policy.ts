/**
 * Authorisation: principal × key alias × operation, deny by default, and the conditions a grant may
 * add: what the request's encryption context must hold, and that the caller gives a reason. Patterns
 * use `*` for any run of characters and are compiled once, at start-up.
 */
import type { ContextCondition, Grant } from '../config/config.js'
import { isServicePermission, permissionsGrantedBy, type Permission, type ServicePermission } from '../operations.js'
import type { Principal } from './principal.js'

/** What the conditions of a grant look at in one call. */
export interface AccessCircumstances {
  /**
   * The request's encryption context, `{}` when it sent none; undefined for operations that take no
   * context (key metadata, a purge, the batch-level check), which context conditions do not concern.
   */
  readonly context?: Readonly<Record<string, string>> | undefined
  /** The caller's reason (x-keywrap-reason), if it sent one. */
  readonly reason?: string | undefined
}

export type RefusalCode = 'forbidden' | 'context_not_allowed' | 'reason_required'

/** Why the policy refuses a call: `forbidden` (no grant at all) or the condition a grant set that was not met. */
export interface Refusal {
  readonly code: RefusalCode
  /** For the caller: names the condition, never a value of the context or of a claim. */
  readonly detail: string | undefined
}

export interface Policy {
  /** Why the principal may not do this to the alias in these circumstances; undefined: it may. */
  refusal(principal: Principal, alias: string, permission: Permission, circumstances?: AccessCircumstances): Refusal | undefined
  /** Whether refusal() is undefined. */
  allows(principal: Principal, alias: string, permission: Permission, circumstances?: AccessCircumstances): boolean
  /** Whether any grant lets the principal use or read this alias (GET /v1/keys lists those); grants that require a reason count only with one. */
  allowsAny(principal: Principal, alias: string, circumstances?: Pick<AccessCircumstances, 'reason'>): boolean
  /** For operations tied to no key (metrics.read): any grant listing the operation, whatever its keys. */
  unscopedRefusal(principal: Principal, permission: ServicePermission, circumstances?: Pick<AccessCircumstances, 'reason'>): Refusal | undefined
  /** Whether unscopedRefusal() is undefined. */
  allowsUnscoped(principal: Principal, permission: ServicePermission, circumstances?: Pick<AccessCircumstances, 'reason'>): boolean
}

const NO_GRANT = Symbol('no grant names the call')

type CompiledCondition = { readonly key: string } & ({ readonly pattern: RegExp; readonly text: string } | { readonly claim: string })

interface CompiledGrant {
  readonly principals: readonly RegExp[]
  readonly keys: readonly RegExp[]
  /** The grant's operations and the permissions they imply (permissionsGrantedBy). */
  readonly operations: ReadonlySet<string>
  readonly issuer: string | undefined
  /** Whether the grant allows anything done to a key, as opposed to only unscoped operations. */
  readonly scoped: boolean
  readonly context: readonly CompiledCondition[]
  readonly requireReason: boolean
}

export class GrantPolicy implements Policy {
  private readonly grants: readonly CompiledGrant[]

  constructor(grants: readonly Grant[]) {
    this.grants = grants.map((grant) => ({
      principals: grant.principals.map(compilePattern),
      keys: grant.keys.map(compilePattern),
      operations: new Set(grant.operations.flatMap(permissionsGrantedBy)),
      issuer: grant.issuer,
      scoped: grant.operations.some((operation) => operation === '*' || !isServicePermission(operation)),
      context: Object.entries(grant.context ?? {}).map(([key, condition]) => compileCondition(key, condition)),
      requireReason: grant.requireReason === true,
    }))
  }

  refusal(principal: Principal, alias: string, permission: Permission, circumstances: AccessCircumstances = {}): Refusal | undefined {
    const refusal = this.firstRefusal(
      (grant) => grantsPermission(grant, permission) && this.matchesPrincipal(grant, principal) && matchesKey(grant, alias),
      principal,
      circumstances,
    )
    return refusal === NO_GRANT ? { code: 'forbidden', detail: `You may not ${permission} with key "${alias}".` } : refusal
  }

  allows(principal: Principal, alias: string, permission: Permission, circumstances?: AccessCircumstances): boolean {
    return this.refusal(principal, alias, permission, circumstances) === undefined
  }

  allowsAny(principal: Principal, alias: string, circumstances: Pick<AccessCircumstances, 'reason'> = {}): boolean {
    // A grant of metrics.read only must not reveal key aliases through GET /v1/keys.
    return this.grants.some(
      (grant) =>
        grant.scoped && this.matchesPrincipal(grant, principal) && matchesKey(grant, alias) && (!grant.requireReason || circumstances.reason !== undefined),
    )
  }

  unscopedRefusal(principal: Principal, permission: ServicePermission, circumstances: Pick<AccessCircumstances, 'reason'> = {}): Refusal | undefined {
    const refusal = this.firstRefusal((grant) => grantsPermission(grant, permission) && this.matchesPrincipal(grant, principal), principal, {
      reason: circumstances.reason,
    })
    return refusal === NO_GRANT ? { code: 'forbidden', detail: `You may not ${permission}.` } : refusal
  }

  allowsUnscoped(principal: Principal, permission: ServicePermission, circumstances?: Pick<AccessCircumstances, 'reason'>): boolean {
    return this.unscopedRefusal(principal, permission, circumstances) === undefined
  }

  /**
   * Allowed when any of the grants that name the call has its conditions met; else what the caller
   * should change: a reason, if a grant whose context conditions are met asks only for that, or else
   * the first grant's unmet condition (NO_GRANT when no grant names the call). On every key access:
   * a loop, no array.
   */
  private firstRefusal(
    names: (grant: CompiledGrant) => boolean,
    principal: Principal,
    circumstances: AccessCircumstances,
  ): Refusal | typeof NO_GRANT | undefined {
    let first: Refusal | typeof NO_GRANT = NO_GRANT
    for (const grant of this.grants) {
      if (!names(grant)) continue
      const unmet = unmetCondition(grant, principal, circumstances)
      if (!unmet) return undefined
      if (first === NO_GRANT || (unmet.code === 'reason_required' && first.code !== 'reason_required')) first = unmet
    }
    return first
  }

  private matchesPrincipal(grant: CompiledGrant, principal: Principal): boolean {
    return (grant.issuer === undefined || grant.issuer === principal.issuer) && grant.principals.some((pattern) => pattern.test(principal.id))
  }
}

/** The embedded default without a policy section: every principal of the development issuer may do everything. */
export function developmentPolicy(devIssuer: string): Policy {
  return new GrantPolicy([{ principals: ['*'], keys: ['*'], operations: ['*'], issuer: devIssuer }])
}

/** Context conditions first: a grant refused for want of a reason is one a reason would satisfy. */
function unmetCondition(grant: CompiledGrant, principal: Principal, { context, reason }: AccessCircumstances): Refusal | undefined {
  if (context !== undefined) {
    for (const condition of grant.context) {
      const unmet = unmetContextCondition(condition, context, principal)
      if (unmet !== undefined) return { code: 'context_not_allowed', detail: unmet }
    }
  }
  if (grant.requireReason && reason === undefined) {
    return { code: 'reason_required', detail: 'Your grant requires a reason: send the x-keywrap-reason header (1 to 256 printable ASCII characters).' }
  }
  return undefined
}

/** What the condition requires, in words, when the context does not meet it. Values are never quoted: they may be secrets of another tenant. */
function unmetContextCondition(condition: CompiledCondition, context: Readonly<Record<string, string>>, principal: Principal): string | undefined {
  const { key } = condition
  const required = 'claim' in condition ? `equal the token's claim "${condition.claim}"` : `match "${condition.text}"`
  if (!Object.hasOwn(context, key)) return `Your grant requires context key "${key}", which must ${required}.`
  const value = context[key]!
  if ('pattern' in condition) return condition.pattern.test(value) ? undefined : `Context key "${key}" must ${required}.`
  const claims = principal.claims
  if (!claims || !Object.hasOwn(claims, condition.claim)) {
    return `Context key "${key}" must ${required}, and the token carries no such string claim.`
  }
  return claims[condition.claim] === value ? undefined : `Context key "${key}" must ${required}.`
}

function grantsPermission(grant: CompiledGrant, permission: Permission): boolean {
  return grant.operations.has('*') || grant.operations.has(permission)
}

function matchesKey(grant: CompiledGrant, alias: string): boolean {
  return grant.keys.some((pattern) => pattern.test(alias))
}

function compileCondition(key: string, condition: ContextCondition): CompiledCondition {
  return typeof condition === 'string' ? { key, pattern: compilePattern(condition), text: condition } : { key, claim: condition.claim }
}

function compilePattern(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${escaped.join('.*')}$`, 's')
}
