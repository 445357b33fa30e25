/**
 * `keywrap audit versions FILE…`: which KEK versions the audit trail shows in use, per alias and
 * version (and per principal with --by principal): allowed unwraps and rewraps of keys under the
 * version, accesses that failed on it, and the first and last time seen. A rewrap counts for the
 * version of the key presented (its entry's sourceKeyVersion). Reads what `audit verify` reads.
 */
import { auditFields, readTrail } from './audit-verify.js'
import { EXIT, parseCommandLine, UsageError, type Command } from './command.js'

export interface VersionUseRow {
  readonly alias: string
  /** The version number, from the end of the version's name. */
  readonly version: number | undefined
  /** The provider's full name of the version. */
  readonly keyVersion: string
  readonly principal?: string
  unwraps: number
  rewraps: number
  /** Unwraps and rewraps that reached the version and failed (e.g. it was disabled, or the key did not authenticate). */
  failed: number
  firstSeen: string
  lastSeen: string
}

const VERSION_NUMBER = /\/(?:cryptoKeyVersions|versions)\/(\d+)$/

/** The rows of the trails in `files` ("-" is standard input), sorted by alias, version and principal. */
export async function versionUses(files: readonly string[], options: { byPrincipal?: boolean } = {}): Promise<VersionUseRow[]> {
  const rows = new Map<string, VersionUseRow>()
  for (const file of files) {
    for await (const text of await readTrail(file)) {
      const parsed = auditFields(text)
      if (parsed === undefined || 'malformed' in parsed) continue
      const { operation, outcome, alias, time, principal } = parsed.fields
      if ((operation !== 'unwrap' && operation !== 'rewrap') || outcome === 'denied') continue
      const keyVersion = operation === 'rewrap' ? parsed.fields.sourceKeyVersion : parsed.fields.keyVersion
      if (typeof keyVersion !== 'string' || typeof alias !== 'string' || typeof time !== 'string') continue
      const who = options.byPrincipal ? String(principal ?? '') : undefined
      const id = JSON.stringify([alias, keyVersion, who])
      let row = rows.get(id)
      if (!row) {
        const number = VERSION_NUMBER.exec(keyVersion)?.[1]
        row = {
          alias,
          version: number === undefined ? undefined : Number(number),
          keyVersion,
          ...(who !== undefined && { principal: who }),
          unwraps: 0,
          rewraps: 0,
          failed: 0,
          firstSeen: time,
          lastSeen: time,
        }
        rows.set(id, row)
      }
      if (outcome !== 'allowed') row.failed++
      else if (operation === 'unwrap') row.unwraps++
      else row.rewraps++
      if (time < row.firstSeen) row.firstSeen = time
      if (time > row.lastSeen) row.lastSeen = time
    }
  }
  return [...rows.values()].sort(
    (a, b) =>
      a.alias.localeCompare(b.alias) ||
      (a.version ?? 0) - (b.version ?? 0) ||
      a.keyVersion.localeCompare(b.keyVersion) ||
      (a.principal ?? '').localeCompare(b.principal ?? ''),
  )
}

function table(rows: readonly VersionUseRow[], byPrincipal: boolean): string {
  const header = ['ALIAS', 'VERSION', ...(byPrincipal ? ['PRINCIPAL'] : []), 'UNWRAPS', 'REWRAPS', 'FAILED', 'FIRST SEEN', 'LAST SEEN']
  const cells = rows.map((row) => [
    row.alias,
    String(row.version ?? row.keyVersion),
    ...(byPrincipal ? [row.principal || '-'] : []),
    String(row.unwraps),
    String(row.rewraps),
    String(row.failed),
    row.firstSeen,
    row.lastSeen,
  ])
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => line[column]!.length)))
  return [header, ...cells]
    .map((line) =>
      line
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

export const auditVersionsCommand: Command = {
  name: 'audit versions',
  summary: 'count, per alias and KEK version, the unwraps and rewraps an audit trail shows, and when',
  arguments: '[--by principal] [--json] FILE…',
  help: `Reads audit trails like audit verify (file sink or stdout lines, Cloud Logging exports as JSON lines
or one JSON array; - reads standard input) and prints, per alias and KEK version, the allowed unwraps
and rewraps of keys under that version, the ones that failed on it, and the first and last time
seen. A rewrap counts for the version of the key it was given.

  --by principal   one row per principal as well: who still uses the version
  --json           a JSON array of rows (alias, version, keyVersion, principal, unwraps, rewraps,
                   failed, firstSeen, lastSeen) for scripts`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, { by: { type: 'string' }, json: { type: 'boolean', default: false } })
    if (positionals.length === 0) throw new UsageError('name at least one FILE (- for standard input)')
    if (values.by !== undefined && values.by !== 'principal') throw new UsageError(`--by takes "principal", not "${values.by}"`)
    const byPrincipal = values.by === 'principal'
    let rows: VersionUseRow[]
    try {
      rows = await versionUses(positionals, { byPrincipal })
    } catch (error) {
      process.stderr.write(`keywrap audit versions: cannot read the trail (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})\n`)
      return EXIT.noInput
    }
    process.stdout.write(
      values.json ? `${JSON.stringify(rows, null, 2)}\n` : rows.length === 0 ? 'no unwrap or rewrap in the trail\n' : `${table(rows, byPrincipal)}\n`,
    )
    return EXIT.ok
  },
}
