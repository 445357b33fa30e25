/**
 * The benchmark's floor: a bare Fastify route that parses the same JSON body and answers a body of the
 * same size as keywrap's unwrap, with no auth, crypto, cache or audit.
 */
import Fastify from 'fastify'

const app = Fastify({ logger: false })
const answer = {
  plaintext: Buffer.alloc(32, 1).toString('base64'),
  keyVersion: 'local://default/versions/1',
  primary: true,
}
app.post('/v1/keys/:alias', async (request) => {
  const body = request.body as { wrappedKey?: string }
  return { ...answer, primary: typeof body.wrappedKey === 'string' }
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
const address = app.server.address()
process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`)
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
