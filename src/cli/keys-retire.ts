/**
 * `keywrap keys retire ALIAS VERSION [--url URL]`: disables an old KEK version once the evidence shows
 * nothing used it within --since: the service's per-version use counts (GET /v1/keys/{alias}; one
 * instance, since its start) and the audit trails given with --audit (every instance). Local keys are
 * disabled in the keyring; for a Cloud KMS key the gcloud command is printed, for an operator with
 * the rights to run it.
 */
import { loadConfig } from '../config/load-config.js'
import { KeyringFile } from '../providers/local/keyring-file.js'
import { versionUses } from './audit-versions.js'
import { EXIT, parseCommandLine, UsageError, type Command } from './command.js'
import { DEFAULT_TIMEOUT_SECONDS, KeywrapClient, ServiceError, type KeyDetails } from './keywrap-client.js'
import { SERVICE_TARGET_OPTIONS, serviceTarget } from './service-target.js'

const DURATION = /^(\d+)(s|m|h|d)$/
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const
const CRYPTO_KEY = /^gcp-kms:\/\/projects\/([^/]+)\/locations\/([^/]+)\/keyRings\/([^/]+)\/cryptoKeys\/([^/]+)$/

export const keysRetireCommand: Command = {
  name: 'keys retire',
  summary: 'disable an old key version once no use of it shows within --since (local), or print the gcloud command (Cloud KMS)',
  arguments: 'ALIAS VERSION [--url URL] [--audit FILE]… [--since DURATION] [--token TOKEN] [--reason TEXT]',
  help: `Refuses while the evidence shows a use of VERSION within --since (default 7d; 30m, 24h, 7d …):
  - the service at --url (default KEYWRAP_URL, else http://localhost:8080): each version's uses
    since that instance started (GET /v1/keys/ALIAS; the token, --token or KEYWRAP_TOKEN, needs
    keys.read). One instance only: when it started within the window, or other instances serve the
    alias, give their audit trails with --audit.
  - --audit FILE (repeatable; - for standard input): audit trails as audit verify reads them, which
    must cover the window; any unwrap or rewrap of a key under VERSION in the window refuses.
Refuses the primary version. Then a local key's version is disabled in the keyring of KEYWRAP_HOME
(the server's; it sees the change within KEYWRAP_KEY_REFRESH_SECONDS), and for a Cloud KMS key the
exact gcloud kms keys versions disable command is printed. A disabled version can be enabled again;
destroy it only once the disabled version has stayed unneeded for a while. --reason TEXT is sent to the
service as x-keywrap-reason (grants with requireReason ask for one). A service that has not answered
within ${DEFAULT_TIMEOUT_SECONDS} s is a failure (exit 1).`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      ...SERVICE_TARGET_OPTIONS,
      audit: { type: 'string', multiple: true },
      since: { type: 'string', default: '7d' },
    })
    if (positionals.length !== 2) throw new UsageError('name an ALIAS and a VERSION')
    const [alias, versionText] = positionals as [string, string]
    if (!/^[1-9]\d*$/.test(versionText)) throw new UsageError(`VERSION must be a version number, not "${versionText}"`)
    const version = Number(versionText)
    const target = serviceTarget(values)
    const sinceMatch = DURATION.exec(values.since)
    if (!sinceMatch) throw new UsageError(`--since must be a duration like 30m, 24h or 7d, not "${values.since}"`)
    const windowStart = Date.now() - Number(sinceMatch[1]) * UNIT_SECONDS[sinceMatch[2] as keyof typeof UNIT_SECONDS] * 1000
    const trails = values.audit ?? []

    let key: KeyDetails
    try {
      key = await new KeywrapClient(target).getKey(alias)
    } catch (error) {
      if (!(error instanceof ServiceError)) throw error
      process.stderr.write(`keywrap keys retire: cannot read key "${alias}" from ${target.url}: ${error.message}\n`)
      return EXIT.failed
    }
    const described = key.versions.find((v) => v.version === version)
    if (!described) throw new UsageError(`"${alias}" has no version ${version} (versions: ${key.versions.map((v) => v.version).join(', ')})`)
    const refuse = (reason: string) => {
      process.stderr.write(`keywrap keys retire: not retiring ${alias} version ${version}: ${reason}\n`)
      return EXIT.failed
    }
    if (version === key.primaryVersion) return refuse('it is the primary version; rotate and rewrap first')
    if (described.state !== 'ENABLED') {
      process.stdout.write(`${alias} version ${version} is already ${described.state}\n`)
      return EXIT.ok
    }

    const since = new Date(windowStart).toISOString()
    if (described.lastUsedAt !== undefined && Date.parse(described.lastUsedAt) >= windowStart) {
      const uses = Object.entries(described.uses ?? {})
        .filter(([, count]) => count > 0)
        .map(([operation, count]) => `${count} ${operation}`)
        .join(', ')
      return refuse(`the service used it at ${described.lastUsedAt}, after ${since} (${uses} since ${key.usesSince})`)
    }
    const usesSince = key.usesSince
    if (trails.length === 0 && (usesSince === undefined || Date.parse(usesSince) > windowStart)) {
      return refuse(
        `the service counts uses only since ${usesSince ?? 'an unknown time'}, after ${since}; give audit trails covering the window with --audit, or a shorter --since`,
      )
    }
    if (trails.length > 0) {
      let rows
      try {
        rows = await versionUses(trails, { byPrincipal: true })
      } catch (error) {
        process.stderr.write(`keywrap keys retire: cannot read the audit trail (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})\n`)
        return EXIT.noInput
      }
      const recent = rows.filter((row) => row.alias === alias && row.version === version && Date.parse(row.lastSeen) >= windowStart)
      if (recent.length > 0) {
        const who = recent.map(
          (row) => `${row.principal || 'unknown principal'} (${row.unwraps} unwraps, ${row.rewraps} rewraps, ${row.failed} failed; last ${row.lastSeen})`,
        )
        return refuse(`the audit trail shows uses after ${since}: ${who.join('; ')}`)
      }
    }

    if (key.provider === 'local') {
      const name = key.uri.slice('local://'.length)
      await new KeyringFile(loadConfig().home).setState(name, version, 'DISABLED')
      process.stdout.write(`${key.uri}: version ${version} is now DISABLED (no use since ${since}); the server sees it within its key refresh\n`)
      return EXIT.ok
    }
    const parts = CRYPTO_KEY.exec(key.uri)
    if (!parts) return refuse(`${key.uri} is not a Cloud KMS key name`)
    const [, project, location, keyRing, cryptoKey] = parts
    process.stdout.write(
      `# No use of ${alias} version ${version} since ${since}. Disable it in Cloud KMS with:\n` +
        `gcloud kms keys versions disable ${version} --key ${cryptoKey} --keyring ${keyRing} --location ${location} --project ${project}\n`,
    )
    return EXIT.ok
  },
}
