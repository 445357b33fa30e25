/**
 * The benchmark's floor: a bare Fastify route that parses the same JSON body and answers a body of the
 * same size as keywrap's unwrap, with no auth, crypto, cache or audit.
 */
import Fastify from 'fastify'

const app = Fastify({ logger: false })
const plaintext = Buffer.alloc(32, 1).toString('base64')
const keyVersion = 'local://default/versions/1'
// A local wrapped key: kw1.<version>.<base64url of 4 + 12 + 32 + 16 bytes>.
const wrappedKey = `kw1.1.${Buffer.alloc(64, 2).toString('base64url')}`
// `:alias` takes the whole last segment (`default:unwrap`); the answer has the size of that operation's.
app.post('/v1/keys/:alias', async (request) => {
  const body = request.body as { wrappedKey?: string }
  if ((request.params as { alias: string }).alias.endsWith(':generateDataKey')) return { plaintext, wrappedKey, keyVersion }
  return { plaintext, keyVersion, primary: typeof body.wrappedKey === 'string' }
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
const address = app.server.address()
process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`)
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
