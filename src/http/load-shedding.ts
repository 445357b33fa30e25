/**
 * Overload: at most `maxInFlight` authenticated requests are handled at once; one more is answered at
 * once with 503 `overloaded` and `Retry-After: 1` (and Connection: close), before its token is verified
 * or its body read, so that the admitted ones keep their latency and memory stays bounded. Public routes
 * (/healthz, /readyz, the API description) are not counted, so probes still answer.
 */
import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { KeywrapError } from '../errors.js'
import { sendProblem } from './problem-replies.js'
import { hookAuthenticatedRoutes } from './authenticated-routes.js'

export interface LoadSheddingOptions {
  readonly maxInFlight: number
}

function loadShedding(app: FastifyInstance, { maxInFlight }: LoadSheddingOptions, done: () => void): void {
  let inFlight = 0
  const release = () => void inFlight--
  // Callback style: on the hot path an async hook costs a promise per request.
  const admit: onRequestHookHandler = (request, reply, hookDone) => {
    if (inFlight >= maxInFlight) {
      reply.header('connection', 'close')
      sendProblem(request, reply, new KeywrapError('overloaded', 'Too many requests are in progress; try again.', { retryAfterSeconds: 1 }))
      return
    }
    inFlight++
    // 'close' comes once for every response, sent or abandoned by the client (so `on`, not `once`'s wrapper).
    reply.raw.on('close', release)
    hookDone()
  }
  // First on the routes that authenticate, ahead of authentication itself.
  hookAuthenticatedRoutes(app, 'onRequest', admit, 'first')
  done()
}

export default fp(loadShedding, { name: 'load-shedding' })
