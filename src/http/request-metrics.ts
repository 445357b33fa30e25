/**
 * On each response: its latency in the metrics, by operation and status, and one log line (Fastify's
 * own two request lines are off). Successful requests log at debug: on Cloud Run the platform's request
 * log has a line for each request already, and the audit trail one for each key access; refusals and
 * failures stay visible at info.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Metrics } from '../metrics/metrics.js'
import { boundedLogField } from './request-logger.js'

/** The request as Cloud Logging's httpRequest field describes it (the query string is left out; what the client chose, bounded). */
function httpRequestOf(request: FastifyRequest, reply: FastifyReply) {
  return {
    requestMethod: request.method,
    requestUrl: boundedLogField(request.url.split('?')[0], 'requestUrl'),
    status: reply.statusCode,
    latency: `${(reply.elapsedTime / 1000).toFixed(6)}s`,
    remoteIp: boundedLogField(request.ip, 'remoteIp'),
    userAgent: boundedLogField(request.headers['user-agent'], 'userAgent'),
  }
}

function isLevelEnabled(log: FastifyBaseLogger, level: string): boolean {
  return (log as FastifyBaseLogger & { isLevelEnabled?(level: string): boolean }).isLevelEnabled?.(level) ?? false
}

function requestMetrics(app: FastifyInstance, { metrics }: { readonly metrics: Metrics }, done: () => void): void {
  // Callback style: on the hot path an async hook costs a promise per request.
  app.addHook('onResponse', (request, reply, hookDone) => {
    const operation = request.routeOptions.config.operationId ?? 'unmatched'
    metrics.httpRequestSeconds.observe({ operation, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
    const level = reply.statusCode >= 500 ? 'error' : reply.statusCode >= 400 ? 'info' : 'debug'
    // pino can tell before the line is built; Fastify's no-op logger (logger: false) cannot, and logs nothing.
    if (isLevelEnabled(request.log, level)) request.log[level]({ httpRequest: httpRequestOf(request, reply), operation }, 'request completed')
    hookDone()
  })
  done()
}

export default fp(requestMetrics, { name: 'request-metrics' })
