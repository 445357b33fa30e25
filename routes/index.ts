/** Every route the service serves, listed explicitly; each file implements one operation of openapi.yaml. */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Contract } from '../src/http/openapi-contract.js'
import { installJsonBodyParser } from '../src/http/json-body.js'
import { OPERATIONS } from '../src/operations.js'
import batchRewrap from './batch-rewrap.js'
import batchUnwrap from './batch-unwrap.js'
import generateDataKey from './generate-data-key.js'
import getKey from './get-key.js'
import health from './health.js'
import listKeys from './list-keys.js'
import metrics from './metrics.js'
import openapi from './openapi.js'
import purgeCache from './purge-cache.js'
import readiness from './readiness.js'
import rewrap from './rewrap.js'
import unwrap from './unwrap.js'
import wrap from './wrap.js'
import type { RouteDefinition, RouteServices } from './route.js'

export const routes: readonly RouteDefinition[] = [
  generateDataKey,
  wrap,
  unwrap,
  rewrap,
  batchUnwrap,
  batchRewrap,
  purgeCache,
  listKeys,
  getKey,
  health,
  readiness,
  metrics,
  openapi,
]

/** Each route with the method, URL and schemas of its operation in the contract, and its catalogue entry. */
function registerRoutes(app: FastifyInstance, { contract, services }: { contract: Contract; services: RouteServices }, done: () => void): void {
  // Bodies are JSON or nothing; any other media type is a 415, not a string for the schema to reject.
  app.removeContentTypeParser(['text/plain'])
  installJsonBodyParser(app)
  for (const route of routes) {
    const operation = contract.operations.get(route.operationId)
    if (!operation) throw new Error(`routes/${route.operationId}: openapi.yaml has no operation with this operationId`)
    app.route({
      method: operation.method,
      url: operation.url,
      schema: operation.schema,
      config: { operationId: route.operationId, operation: OPERATIONS[route.operationId] },
      // A POST whose fields are all optional may come with no body at all; a JSON null is a body, and
      // the schema refuses it like any other non-object.
      ...(operation.schema.body && {
        preValidation: (request, _reply, hookDone) => {
          if (request.body === undefined) request.body = {}
          hookDone()
        },
      }),
      handler: route.handler(services),
    })
  }
  done()
}

export default fp(registerRoutes, { name: 'routes' })
