/** Kept apart from the Google clients so that validating settings loads no Google library. */

/**
 * `HOST:PORT` or `[IPv6]:PORT`, also written as a URL (`http://HOST:PORT`), as in KMS_EMULATOR_HOST
 * and LOGGING_EMULATOR_HOST. The host comes back without brackets.
 */
export function parseEmulatorHost(value: string): { host: string; port: number } | { error: string } {
  const match = /^(?:https?:\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})\/?$/.exec(value.trim())
  const port = Number(match?.[2])
  if (!match || port < 1 || port > 65_535) return { error: 'must be HOST:PORT, e.g. 127.0.0.1:8085' }
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port }
}
