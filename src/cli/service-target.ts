/**
 * Where the CLI's service-calling commands (encrypt, decrypt, rewrap, keys retire) send their calls,
 * with what token and reason: --url, --token and --reason, else the environment (KEYWRAP_URL,
 * KEYWRAP_TOKEN), else http://localhost:8080 for the address. One place, so that every such command
 * has the same defaults and the same usage errors.
 */
import { clientEnvironment, type ClientEnvironment } from '../config/client-environment.js'
import { isValidReason, MAX_REASON_LENGTH } from '../http/caller-reason.js'
import { UsageError } from './command.js'

export const DEFAULT_SERVICE_URL = 'http://localhost:8080'

/** The options of serviceTarget(), for parseCommandLine(). */
export const SERVICE_TARGET_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  reason: { type: 'string' },
} as const

export interface ServiceTargetArguments {
  url?: string
  token?: string
  reason?: string
}

export interface ServiceTarget {
  /** An http or https URL, as given. */
  readonly url: string
  /** A bearer token. */
  readonly token: string
  /** Sent as x-keywrap-reason with every call; undefined: none. */
  readonly reason: string | undefined
}

/** The service, token and reason of a command line's --url, --token and --reason, else of the environment; a UsageError when one is missing or invalid. */
export function serviceTarget(values: ServiceTargetArguments, environment: ClientEnvironment = clientEnvironment()): ServiceTarget {
  const token = values.token ?? environment.token
  if (!token) throw new UsageError('no token: set KEYWRAP_TOKEN or give --token')
  const url = values.url ?? environment.url ?? DEFAULT_SERVICE_URL
  if (!isHttpUrl(url)) throw new UsageError(`${values.url === undefined ? 'KEYWRAP_URL' : '--url'} must be an http(s) URL, not "${url}"`)
  return { url, token, reason: reasonOption(values.reason) }
}

/** The --reason option: 1 to 256 printable ASCII characters (what keywrap accepts in x-keywrap-reason), or none. */
function reasonOption(value: string | undefined): string | undefined {
  if (value !== undefined && !isValidReason(value)) throw new UsageError(`--reason must be 1 to ${MAX_REASON_LENGTH} printable ASCII characters`)
  return value
}

function isHttpUrl(text: string): boolean {
  try {
    const { protocol } = new URL(text)
    return protocol === 'http:' || protocol === 'https:'
  } catch {
    return false
  }
}
