import { defineRoute, principalOf } from './route.js'

export default defineRoute({
  operationId: 'listKeys',
  async handle(request, _reply, { keys }) {
    return { keys: keys.listKeys(principalOf(request)).map((alias) => ({ alias })) }
  },
})
