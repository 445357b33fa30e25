/**
 * Bearer-token authentication of the operations that need it (the catalogue's `authenticates`), on
 * onRequest: before the body is even parsed, so an anonymous caller gets 401 and nothing else.
 */
import { isIP } from 'node:net'
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { parseTraceContext, type TraceContext } from '../audit/trace-context.js'
import type { ManagedAuthenticator } from '../auth/authenticator.js'
import type { Principal } from '../auth/principal.js'
import { CLIENT_REQUEST_ID } from '../audit/request-id.js'
import { isKeywrapError, KeywrapError } from '../errors.js'
import type { Caller, RefusedRequest } from '../keys/key-service.js'
import type { FailedAuthentications } from './failed-authentications.js'
import { refusalSubjectOf, type RefusalSubject } from './refusal-audit.js'
import { callerReasonOf } from './caller-reason.js'
import { hookAuthenticatedRoutes } from './authenticated-routes.js'

export interface AuthenticationOptions {
  readonly authenticator: ManagedAuthenticator
  /** The project of the Cloud Trace context recorded with each request's audit entries. */
  readonly projectId: string
  /** The pre-authentication limit on failed authentications per client address; absent: none. */
  readonly failures?: FailedAuthentications<RefusalSubject | undefined>
}

function authentication(app: FastifyInstance, { authenticator, projectId, failures }: AuthenticationOptions, done: () => void): void {
  app.decorateRequest('principal', undefined)
  app.decorateRequest('trace', undefined)
  app.decorateRequest('callerReason', undefined)
  // Callback style: on the hot path an async hook costs a promise per request.
  const authenticate: onRequestHookHandler = (request, _reply, done) => {
    const authenticated = (principal: Principal) => {
      request.principal = principal
      request.trace = parseTraceContext(request.headers, projectId)
      // Only an authenticated caller's reason is read: an anonymous one's would be text nobody vouches for.
      const reason = callerReasonOf(request)
      if (reason instanceof KeywrapError) return done(reason)
      request.callerReason = reason
      done()
    }
    // A token verified before goes on at once; any other waits for verification.
    const authorization = request.headers.authorization
    const cached = authenticator.cachedPrincipal?.(authorization)
    if (cached) return authenticated(cached)
    if (!failures) return void authenticator.authenticate(authorization).then(authenticated, done)
    const address = clientAddressOf(request) ?? ''
    const refusal = failures.refusal(address, () => refusalSubjectOf(request))
    if (refusal) return done(refusal)
    authenticator.authenticate(authorization).then(authenticated, (error: unknown) => {
      if (isKeywrapError(error) && error.code === 'unauthenticated') failures.failed(address)
      done(error as Error)
    })
  }
  // Added to the routes that need it as they are declared, so the public ones run no hook at all.
  hookAuthenticatedRoutes(app, 'onRequest', authenticate)
  done()
}

export default fp(authentication, { name: 'authentication' })

/** The authenticated caller of a request (operations that authenticate only). */
export function callerOf(request: FastifyRequest): Caller {
  const principal = request.principal
  if (!principal) throw new Error('callerOf() on a route that does not authenticate')
  return { principal, ...requestOf(request) }
}

/** What the audit trail records of a request besides its principal. */
export function requestOf(request: FastifyRequest): RefusedRequest {
  const userAgent = request.headers['user-agent']
  const offeredId = request.headers['x-request-id']
  const peerAddress = request.socket.remoteAddress
  const remoteAddress = clientAddressOf(request)
  return {
    requestId: request.id,
    ...(typeof offeredId === 'string' && CLIENT_REQUEST_ID.test(offeredId) && { clientRequestId: offeredId }),
    remoteAddress,
    // Behind a proxy, the proxy's own address beside the forwarded one.
    ...(peerAddress !== remoteAddress && { peerAddress }),
    ...(userAgent !== undefined && { userAgent }),
    ...(request.trace && { trace: request.trace }),
    ...(request.callerReason !== undefined && { reason: request.callerReason }),
  }
}

/** The client's address: the forwarded one behind a trusted proxy, else the socket's. */
export function clientAddressOf(request: FastifyRequest): string | undefined {
  // X-Forwarded-For is text a client may have written: only an address goes to the audit trail.
  return isIP(request.ip) ? request.ip : request.socket.remoteAddress
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined
    /** The Cloud Trace context of the request, for its audit entries. */
    trace: TraceContext | undefined
    /** The caller's x-keywrap-reason, once authenticated (callerReasonOf()). */
    callerReason: string | undefined
  }
}
