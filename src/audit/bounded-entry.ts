/**
 * An audit entry's fields that a caller chooses (User-Agent, context, token claims, reasons) are
 * bounded, each cut with a marker, so that no entry exceeds ~8 KB whatever the request: an abusive
 * caller cannot make the trail grow faster than its requests are counted.
 */
import { truncate } from '../support/truncate.js'
import type { AuditEntry } from './audit-entry.js'

export const AUDIT_FIELD_LIMITS = {
  alias: 128,
  userAgent: 256,
  principal: 256,
  issuer: 256,
  reason: 512,
  callerReason: 256,
  contextKey: 128,
  contextValue: 256,
  contextEntries: 16,
} as const

/** The key of the entry that says how many context entries were left out. */
export const CONTEXT_OMITTED_KEY = '…'

export function boundedEntry(entry: AuditEntry): AuditEntry {
  // Nearly every entry is within bounds: it is passed on as it is, with no copy.
  if (withinBounds(entry)) return entry
  const limits = AUDIT_FIELD_LIMITS
  return {
    ...entry,
    alias: truncate(entry.alias, limits.alias),
    principal: entry.principal === undefined ? undefined : truncate(entry.principal, limits.principal),
    issuer: entry.issuer === undefined ? undefined : truncate(entry.issuer, limits.issuer),
    userAgent: entry.userAgent === undefined ? undefined : truncate(entry.userAgent, limits.userAgent),
    context: entry.context === undefined ? undefined : boundedContext(entry.context),
    ...(entry.reason !== undefined && { reason: truncate(entry.reason, limits.reason) }),
    ...(entry.callerReason !== undefined && { callerReason: truncate(entry.callerReason, limits.callerReason) }),
  }
}

function boundedContext(context: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  const entries = Object.entries(context)
  const { contextEntries, contextKey, contextValue } = AUDIT_FIELD_LIMITS
  const bounded: Record<string, string> = {}
  for (const [key, value] of entries.slice(0, contextEntries)) bounded[truncate(key, contextKey)] = truncate(value, contextValue)
  if (entries.length > contextEntries) bounded[CONTEXT_OMITTED_KEY] = `+${entries.length - contextEntries} entries`
  return bounded
}

function withinBounds(entry: AuditEntry): boolean {
  const limits = AUDIT_FIELD_LIMITS
  return (
    entry.alias.length <= limits.alias &&
    (entry.principal?.length ?? 0) <= limits.principal &&
    (entry.issuer?.length ?? 0) <= limits.issuer &&
    (entry.userAgent?.length ?? 0) <= limits.userAgent &&
    (entry.reason?.length ?? 0) <= limits.reason &&
    (entry.callerReason?.length ?? 0) <= limits.callerReason &&
    (entry.context === undefined || contextWithinBounds(entry.context))
  )
}

function contextWithinBounds(context: Readonly<Record<string, string>>): boolean {
  let count = 0
  for (const key in context) {
    if (++count > AUDIT_FIELD_LIMITS.contextEntries || key.length > AUDIT_FIELD_LIMITS.contextKey || context[key]!.length > AUDIT_FIELD_LIMITS.contextValue)
      return false
  }
  return true
}
