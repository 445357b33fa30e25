import { defineRoute } from './route.js'

export default defineRoute({
  operationId: 'getHealth',
  async handle() {
    return { status: 'ok' }
  },
})
