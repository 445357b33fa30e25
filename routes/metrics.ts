import { callerOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('getMetrics', ({ keys, metrics }) => async (request, reply) => {
  keys.authoriseMetrics(callerOf(request))
  return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
})
