import { defineRoute } from './route.js'

export default defineRoute({
  operationId: 'getOpenApi',
  async handle(_request, reply, { contract }) {
    return reply.type('application/yaml; charset=utf-8').send(contract.text)
  },
})
