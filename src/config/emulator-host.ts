/** Kept apart from the Logging client so that validating settings loads no Google library. */

/** `HOST:PORT` or `[IPv6]:PORT`, as in LOGGING_EMULATOR_HOST. */
export function parseEmulatorHost(value: string): { host: string; port: number } | { error: string } {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value.trim())
  const port = Number(match?.[2])
  if (!match || port < 1 || port > 65_535) return { error: 'must be HOST:PORT, e.g. 127.0.0.1:8085' }
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port }
}
