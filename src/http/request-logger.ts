/** Request logs (pino) as Cloud Logging reads them: `severity`, `message`, an RFC 3339 `time`. */
import type { FastifyServerOptions } from 'fastify'

const SEVERITY: Readonly<Record<string, string>> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
}

/** `stream`: the writer the audit sink shares (src/support/stdout-lines), so lines never interleave. */
export function requestLoggerOptions(level: string, stream: { write(line: string): unknown }): FastifyServerOptions['logger'] {
  return {
    level,
    stream,
    messageKey: 'message',
    base: undefined,
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
    redact: { paths: ['req.headers.authorization', 'req.headers["x-serverless-authorization"]'], remove: true },
  }
}
