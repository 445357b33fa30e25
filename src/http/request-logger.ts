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

export function requestLoggerOptions(level: string): FastifyServerOptions['logger'] {
  return {
    level,
    messageKey: 'message',
    base: undefined,
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
    redact: { paths: ['req.headers.authorization', 'req.headers["x-serverless-authorization"]'], remove: true },
  }
}
