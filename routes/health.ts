import { defineRoute } from './route.js'

export default defineRoute({
  operationId: 'getHealth',
  authenticated: false,
  async handle() {
    return { status: 'ok' }
  },
})
