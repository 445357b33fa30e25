import { principalOf } from '../src/http/authentication.js'
import { defineRoute } from './route.js'

export default defineRoute('listKeys', ({ keys }) => async (request) => ({ keys: keys.listKeys(principalOf(request)).map((alias) => ({ alias })) }))
