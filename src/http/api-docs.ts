/** The contract served as Swagger UI at /docs. */
import type { FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import type { Contract } from './openapi-contract.js'

async function apiDocs(app: FastifyInstance, { contract }: { readonly contract: Contract }): Promise<void> {
  await app.register(swagger, { mode: 'static', specification: { document: contract.document as never } })
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true, tryItOutEnabled: true } })
}

export default fp(apiDocs, { name: 'api-docs' })
