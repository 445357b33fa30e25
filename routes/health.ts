import { defineRoute } from './route.js'

export default defineRoute('getHealth', () => async () => ({ status: 'ok' }))
