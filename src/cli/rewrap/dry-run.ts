/**
 * `keywrap rewrap --dry-run`: how many keys of the input a campaign would change. The version a key
 * is under is read from the key itself (kw1.<version>.…), the primary from the service; nothing is
 * unwrapped, so a key that names the primary but would not unwrap is counted as current.
 */
import { parseWrappedKey } from '../../crypto/wrapped-key.js'
import { parseInputLine } from './lines.js'

export interface DryRunCounts {
  readonly primaryVersion: number
  /** Keys per version named. */
  readonly byVersion: Map<number, number>
  /** Keys under another version than the primary. */
  toRewrap: number
  current: number
  /** Lines that are not a wrapped key keywrap made (not JSON, no wrappedKey, not kw1.…). */
  invalid: number
  blank: number
}

export async function countVersions(lines: AsyncIterable<string>, primaryVersion: number): Promise<DryRunCounts> {
  const counts: DryRunCounts = { primaryVersion, byVersion: new Map(), toRewrap: 0, current: 0, invalid: 0, blank: 0 }
  for await (const text of lines) {
    const line = parseInputLine(text)
    if (line.kind === 'blank') {
      counts.blank++
      continue
    }
    const wrapped = line.kind === 'key' ? parseWrappedKey(line.item.wrappedKey) : undefined
    if (!wrapped) {
      counts.invalid++
      continue
    }
    counts.byVersion.set(wrapped.version, (counts.byVersion.get(wrapped.version) ?? 0) + 1)
    if (wrapped.version === primaryVersion) counts.current++
    else counts.toRewrap++
  }
  return counts
}

export function dryRunReport(alias: string, counts: DryRunCounts): string {
  const versions = [...counts.byVersion.entries()].sort(([a], [b]) => a - b)
  const lines = versions.map(([version, keys]) => `  version ${version}: ${keys}${version === counts.primaryVersion ? ' (primary)' : ''}`)
  const invalid = counts.invalid > 0 ? `, ${counts.invalid} lines are not wrapped keys` : ''
  return `${alias}: primary version ${counts.primaryVersion}\n${lines.join('\n')}${lines.length > 0 ? '\n' : ''}would rewrap ${counts.toRewrap}, already current ${counts.current}${invalid}\n`
}
