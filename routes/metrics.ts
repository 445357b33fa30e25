import { KeywrapError } from '../src/errors.js'
import { principalOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('getMetrics', ({ keys, metrics }) => async (request, reply) => {
  if (!keys.mayReadMetrics(principalOf(request))) throw new KeywrapError('forbidden', 'You may not read metrics.')
  return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
})
