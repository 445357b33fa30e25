import { callerOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('listKeys', ({ keys }) => async (request) => ({ keys: keys.listKeys(callerOf(request)).map((alias) => ({ alias })) }))
