/**
 * The conditions a policy grant may carry besides whom, which keys and which operations: `context`
 * (what the request's encryption context must hold) and `requireReason`. Each malformed one is a
 * violation, so that a grant never silently means more (or less) than it says.
 */
import type { ContextCondition, Grant } from './config.js'

export const CONDITION_FIELDS = ['context', 'requireReason'] as const

type Conditions = Pick<Grant, 'context' | 'requireReason'>

/** The grant's conditions as given in `raw`, or its violations added to `violations`. */
export function readGrantConditions(raw: Record<string, unknown>, where: string, violations: string[]): Conditions {
  const conditions: { context?: Record<string, ContextCondition>; requireReason?: boolean } = {}
  if (raw.context !== undefined) {
    const context = readContextConditions(raw.context, `${where}.context`, violations)
    if (context) conditions.context = context
  }
  if (raw.requireReason !== undefined) {
    if (typeof raw.requireReason === 'boolean') conditions.requireReason = raw.requireReason
    else violations.push(`${where}.requireReason must be true or false`)
  }
  return conditions
}

function readContextConditions(value: unknown, where: string, violations: string[]): Record<string, ContextCondition> | undefined {
  if (!isObject(value) || Object.keys(value).length === 0) {
    violations.push(`${where} must be an object mapping at least one context key to a pattern or to {"claim": "NAME"} (leave it out for no condition)`)
    return undefined
  }
  const conditions: [string, ContextCondition][] = []
  for (const [key, condition] of Object.entries(value)) {
    const at = `${where}.${key}`
    if (key.length === 0) violations.push(`${where}: a context key cannot be empty`)
    else if (typeof condition === 'string') {
      if (condition.length > 0) conditions.push([key, condition])
      else violations.push(`${at} is an empty pattern (use "*" for any value)`)
    } else if (isClaimCondition(condition)) conditions.push([key, { claim: condition.claim }])
    else violations.push(`${at} must be a non-empty pattern or {"claim": "NAME"} naming a claim of the caller's token`)
  }
  // fromEntries defines each key as an own property, so that not even "__proto__" is dropped.
  return Object.fromEntries(conditions)
}

function isClaimCondition(value: unknown): value is { claim: string } {
  return isObject(value) && Object.keys(value).length === 1 && typeof value.claim === 'string' && value.claim.length > 0
}

/** The token claims the grants compare context values with: the only ones a principal keeps. */
export function claimsNamed(grants: readonly Grant[]): string[] {
  const names = new Set<string>()
  for (const grant of grants) {
    for (const condition of Object.values(grant.context ?? {})) if (typeof condition !== 'string') names.add(condition.claim)
  }
  return [...names].sort()
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
