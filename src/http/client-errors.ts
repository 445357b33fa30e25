/**
 * Requests Node's HTTP parser refuses before Fastify sees them (headers over Node's limit, a request
 * not received in time, bytes that are not HTTP) are answered as problem+json too, instead of
 * Fastify's own JSON. There is no request here, so no request id; the connection is closed after.
 */
import type { Socket } from 'node:net'
import { createRequire } from 'node:module'
import { KeywrapError, toProblem } from '../errors.js'

// required, not imported: an ESM import of node:http evaluates every export, and one of them loads
// undici (~25 ms of a cold start).
const { maxHeaderSize, STATUS_CODES } = createRequire(import.meta.url)('node:http') as typeof import('node:http')

export function clientErrorProblem(error: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has no one to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  if (socket.writable && socket.bytesWritten === 0) {
    const problem = problemFor(error)
    const body = JSON.stringify(toProblem(problem))
    socket.write(
      `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\n` +
        'Content-Type: application/problem+json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n' +
        body,
    )
  }
  socket.destroy()
}

function problemFor(error: NodeJS.ErrnoException): KeywrapError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new KeywrapError('headers_too_large', `The request line and header fields together exceed the ${maxHeaderSize} bytes this service reads.`)
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new KeywrapError('request_timeout', 'The request was not received completely in time (KEYWRAP_REQUEST_TIMEOUT_MS).')
    default:
      return new KeywrapError('invalid_request', 'The request is not valid HTTP/1.1.')
  }
}
