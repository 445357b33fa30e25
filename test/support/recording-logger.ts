/** A logger (debug, info, warn, error) that keeps every line it is given, for tests that read what was logged. */
export interface LoggedLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error'
  readonly details: Record<string, unknown>
  readonly message: string
}

export function recordingLogger() {
  const lines: LoggedLine[] = []
  const log = (level: LoggedLine['level']) => (details: object, message: string) =>
    void lines.push({ level, details: details as Record<string, unknown>, message })
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
}
