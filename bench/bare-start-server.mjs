// The cold-start floor: a bare Fastify server in plain JavaScript (nothing to compile or transform at
// start), started the way the bench starts keywrap and ready when its /readyz answers 200.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.get('/readyz', async () => ({ status: 'ready' }))
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
process.stderr.write(`listening on http://localhost:${app.server.address().port}\n`)
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
