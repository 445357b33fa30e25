/** Request logs (pino) as Cloud Logging reads them: `severity`, `message`, an RFC 3339 `time`. */
import type { FastifyServerOptions } from 'fastify'
import { AUDIT_FIELD_LIMITS } from '../audit/bounded-entry.js'
import { truncate } from '../support/truncate.js'

/**
 * The request line's fields that a client chooses, each cut with a marker: Node reads up to 16 KiB
 * of request line and headers, and a client must not make each of its refusals cost that much log.
 */
export const REQUEST_LOG_LIMITS = {
  requestUrl: 512,
  userAgent: AUDIT_FIELD_LIMITS.userAgent,
  /** The client's address, from X-Forwarded-For when a proxy is trusted: any text its sender wrote there. */
  remoteIp: 64,
} as const

/** A client-chosen text as the request log holds it: bounded, and absent when absent. */
export function boundedLogField(text: string | undefined, field: keyof typeof REQUEST_LOG_LIMITS): string | undefined {
  return text === undefined ? undefined : truncate(text, REQUEST_LOG_LIMITS[field])
}

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
