import { defineRoute } from './route.js'

export default defineRoute(
  'getOpenApi',
  ({ contract }) =>
    async (_request, reply) =>
      reply.type('application/yaml; charset=utf-8').send(contract.text),
)
