/**
 * How often each KEK version was used since this instance started, per operation, and when last:
 * the evidence that an old version is, or is no longer, needed (GET /v1/keys/{alias},
 * keywrap_key_version_uses_total, `keywrap keys retire`). A use is an allowed access: unwrap and
 * rewrap count the version of the key presented, generateDataKey and wrap the version that wrapped.
 */
import type { AuditOperation } from '../operations.js'
import type { Metrics } from '../metrics/metrics.js'

/** The operations that use a key version (all audited ones but the cache purge). */
export type KeyUseOperation = Exclude<AuditOperation, 'cache.purge'>

export type VersionUseCounts = Record<KeyUseOperation, number>

export interface VersionUse {
  readonly uses: Readonly<VersionUseCounts>
  /** ISO 8601. */
  readonly lastUsedAt: string
}

interface Tally {
  readonly uses: VersionUseCounts
  lastUsedMs: number
}

export class VersionUses {
  /** When counting started (ISO 8601). */
  readonly since = new Date().toISOString()
  private readonly tallies = new Map<string, Map<number, Tally>>()

  constructor(private readonly metrics?: Metrics) {}

  record(alias: string, version: number, operation: KeyUseOperation): void {
    let versions = this.tallies.get(alias)
    if (!versions) this.tallies.set(alias, (versions = new Map()))
    let tally = versions.get(version)
    if (!tally)
      versions.set(version, (tally = { uses: { generateDataKey: 0, generateDataKeyWithoutPlaintext: 0, wrap: 0, unwrap: 0, rewrap: 0 }, lastUsedMs: 0 }))
    tally.uses[operation]++
    tally.lastUsedMs = Date.now()
    this.metrics?.keyVersionUses.inc({ alias, key_version: String(version), operation })
  }

  /** The version's uses, undefined when it was not used since start. */
  of(alias: string, version: number): VersionUse | undefined {
    const tally = this.tallies.get(alias)?.get(version)
    return tally && { uses: { ...tally.uses }, lastUsedAt: new Date(tally.lastUsedMs).toISOString() }
  }
}
