/**
 * What a route file declares: the operation it implements (method, path and schemas come from
 * openapi.yaml under that operationId; token, grant, audit name and rate-limit cost from its entry in
 * the operations catalogue, src/operations.ts), and a thin handler made from the services it uses.
 * Requests and replies are typed from openapi.yaml (src/http/openapi-types.ts), so tsc sees a handler
 * drift from the contract.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { DekCache } from '../src/cache/dek-cache.js'
import type { Contract } from '../src/http/openapi-contract.js'
import type { operations } from '../src/http/openapi-types.js'
import type { KeyService } from '../src/keys/key-service.js'
import type { KeyRegistry } from '../src/providers/key-registry.js'
import type { Metrics } from '../src/metrics/metrics.js'
import type { BatchItemValidator } from '../src/http/batch-items.js'
import type { AuditSink } from '../src/audit/audit-sink.js'
import type { OperationEntry, OperationId } from '../src/operations.js'

/** Everything a route may use; each route names the few it does. */
export interface RouteServices {
  readonly keys: KeyService
  readonly registry: KeyRegistry
  readonly cache: DekCache
  readonly contract: Contract
  readonly metrics: Metrics
  readonly batchItem: BatchItemValidator
  readonly audit: AuditSink
}

type JsonOf<T> = T extends { content: { 'application/json': infer Json } } ? Json : never
type Operation<Id extends OperationId> = operations[Id]

/**
 * The body fields openapi.yaml gives a default: Ajv fills them in before a handler runs, so there they
 * are always present (the generated types are the client's view, where they are optional). A contract
 * test checks this list against openapi.yaml.
 */
export const BODY_DEFAULTS = { generateDataKey: ['includePlaintext', 'bytes'] } as const satisfies Partial<Record<OperationId, readonly string[]>>

type Defaulted<Id extends OperationId> = Id extends keyof typeof BODY_DEFAULTS ? (typeof BODY_DEFAULTS)[Id][number] : never
type JsonBody<Id extends OperationId> = NonNullable<JsonOf<Operation<Id>['requestBody']>>

/** The request of an operation as openapi.yaml types it, as Fastify's route generic. */
export interface RequestTypes<Id extends OperationId> {
  Params: Operation<Id>['parameters']['path']
  Querystring: Operation<Id>['parameters']['query']
  /** A POST whose fields are all optional may come without a body: it is then `{}` (app.ts). */
  Body: JsonBody<Id> & Required<Pick<JsonBody<Id>, Defaulted<Id> & keyof JsonBody<Id>>>
}

type Readable<T> = T extends readonly (infer Item)[] ? readonly Readable<Item>[] : T extends object ? { readonly [K in keyof T]: Readable<T[K]> } : T
type Responses<Id extends OperationId> = Operation<Id>['responses']

/** Any JSON body the operation answers with. */
export type ReplyBody<Id extends OperationId> = Readable<{ [Status in keyof Responses<Id>]: JsonOf<Responses<Id>[Status]> }[keyof Responses<Id>]>

export type RouteHandler<Id extends OperationId> = (request: FastifyRequest<RequestTypes<Id>>, reply: FastifyReply) => Promise<ReplyBody<Id> | FastifyReply>

type RouteHandlers = { [Id in OperationId]: RouteHandler<Id> }

export interface RouteDefinition {
  readonly operationId: OperationId
  /** The request handler, made from the services the route uses; typed for its operation by defineRoute. */
  handler(services: RouteServices): (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>
}

/** `handler` takes the services the route uses (a part of RouteServices) and returns the request handler. */
export function defineRoute<Id extends OperationId>(operationId: Id, handler: (services: RouteServices) => RouteHandlers[Id]): RouteDefinition {
  // Fastify hands the handler a request its schemas validated against this operation's types.
  return { operationId, handler: handler as RouteDefinition['handler'] }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    operationId?: OperationId
    operation?: OperationEntry
  }
}
