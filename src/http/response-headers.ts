/**
 * Headers on every response: the request id, nosniff, no-store on the API, and Connection: close once
 * the server is closing, so that keep-alive sockets end with their response instead of holding the
 * shutdown open until they time out. A refusal sent before the request's body was read (a 401 on
 * onRequest, a 413 on Content-Length) closes the connection too: otherwise the client could go on
 * dribbling the body it announced on that socket until the request timeout.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

function responseHeaders(app: FastifyInstance, _options: object, done: () => void): void {
  let closing = false
  app.addHook('preClose', (hookDone) => {
    closing = true
    hookDone()
  })
  // Callback style: on the hot path an async hook costs a promise per request.
  app.addHook('onSend', (request, reply, payload, hookDone) => {
    if (closing || (reply.statusCode >= 400 && !request.raw.complete)) reply.header('connection', 'close')
    reply.header('x-request-id', request.id)
    reply.header('x-content-type-options', 'nosniff')
    if (request.url.startsWith('/v1/')) reply.header('cache-control', 'no-store')
    hookDone(null, payload)
  })
  done()
}

export default fp(responseHeaders, { name: 'response-headers' })
