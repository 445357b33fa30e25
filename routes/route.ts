/**
 * What a route file declares: the operation it implements (method, path and schemas come from
 * openapi.yaml under that operationId; token, grant, audit name and rate-limit cost from its entry in
 * the operations catalogue, src/operations.ts), and a thin handler.
 */
import { isIP } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Principal } from '../src/auth/principal.js'
import type { TraceContext } from '../src/audit/trace-context.js'
import type { DekCache } from '../src/cache/dek-cache.js'
import type { Contract } from '../src/http/openapi-contract.js'
import type { Caller, KeyService } from '../src/keys/key-service.js'
import type { KeyRegistry } from '../src/providers/key-registry.js'
import type { Metrics } from '../src/metrics/metrics.js'
import type { BatchItemValidator } from '../src/http/batch-items.js'
import type { AuditSink } from '../src/audit/audit-sink.js'
import type { OperationEntry, OperationId } from '../src/operations.js'

export interface RouteServices {
  readonly keys: KeyService
  readonly registry: KeyRegistry
  readonly cache: DekCache
  readonly contract: Contract
  readonly metrics: Metrics
  readonly batchItem: BatchItemValidator
  readonly audit: AuditSink
}

export interface RouteDefinition {
  readonly operationId: OperationId
  handle(request: FastifyRequest, reply: FastifyReply, services: RouteServices): Promise<unknown>
}

export function defineRoute(definition: RouteDefinition): RouteDefinition {
  return definition
}

/** The authenticated caller of a request (operations that authenticate only). */
export function callerOf(request: FastifyRequest): Caller {
  const principal = request.principal
  if (!principal) throw new Error('callerOf() on a route that does not authenticate')
  const userAgent = request.headers['user-agent']
  return {
    principal,
    requestId: request.id,
    // X-Forwarded-For is text a client may have written: only an address goes to the audit trail.
    remoteAddress: isIP(request.ip) ? request.ip : request.socket.remoteAddress,
    ...(userAgent !== undefined && { userAgent }),
    ...(request.trace && { trace: request.trace }),
  }
}

export function principalOf(request: FastifyRequest): Principal {
  return callerOf(request).principal
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined
    /** The Cloud Trace context of the request, for its audit entries. */
    trace: TraceContext | undefined
  }
  interface FastifyContextConfig {
    operationId?: OperationId
    operation?: OperationEntry
  }
}
