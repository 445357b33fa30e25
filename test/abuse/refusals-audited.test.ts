/**
 * Every refusal on a key route is audited, against `npm start`: 401 (with the token's reason and the
 * issuer it claims), 400, 413 and 415 each get one entry naming the operation, alias, address and
 * outcome; past the failed-authentication limit an address gets 429 without verification, and the
 * trail holds one entry for its first 429 and one summary with the count of the others.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { auditLinesSince } from '../support/audit-lines.js'
import { runCli, startServer, type RunningServer } from '../support/processes.js'

describe('refusals on key routes are audited (npm start)', () => {
  let server: RunningServer
  let token: string
  let forged: string

  before(async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-refusals-'))
    const env = {
      KEYWRAP_HOME: home,
      KEYWRAP_LOG_LEVEL: 'warn',
      KEYWRAP_BODY_LIMIT_BYTES: '4096',
      KEYWRAP_AUTH_FAILURE_LIMIT: '3',
      KEYWRAP_AUTH_FAILURE_WINDOW_SECONDS: '3',
    }
    token = (await runCli(['token', '--sub', 'alice'], env)).stdout.trim()
    const [header, payload, signature] = token.split('.') as [string, string, string]
    forged = `${header}.${payload}.${signature.slice(0, -4)}AAAA`
    server = await startServer(env)
  })
  after(() => server.stop())

  const unwrap = (bearer: string, body: string, contentType = 'application/json') =>
    fetch(`${server.baseUrl}/v1/keys/default:unwrap`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': contentType },
      body,
    }).then(async (r) => {
      await r.arrayBuffer()
      return r.status
    })

  test('400 (JSON, schema), 413 and 415: one entry each, operation and alias from the route, outcome failed', async () => {
    const from = server.stdout().length
    const statuses = [
      await unwrap(token, '{"wrappedKey":'),
      await unwrap(token, '{"surprise":1}'),
      await unwrap(token, JSON.stringify({ wrappedKey: 'A'.repeat(5000) })),
      await unwrap(token, 'x', 'text/plain'),
    ]
    assert.deepEqual(statuses, [400, 400, 413, 415])
    const entries = (await auditLinesSince(server, from)).map((line) => JSON.parse(line))
    assert.deepEqual(
      entries.map((e) => [e.operation, e.alias, e.outcome, e.errorCode, e.principal]),
      [
        ['unwrap', 'default', 'failed', 'invalid_request', 'alice'],
        ['unwrap', 'default', 'failed', 'invalid_request', 'alice'],
        ['unwrap', 'default', 'failed', 'payload_too_large', 'alice'],
        ['unwrap', 'default', 'failed', 'unsupported_media_type', 'alice'],
      ],
    )
    assert.ok(entries.every((e) => e.remoteAddress === '127.0.0.1' && typeof e.reason === 'string'))
  })

  test('3 forged tokens: 3 entries with the reason and claimed issuer; then 429 without verification, one entry, and a summary of the rest', async () => {
    assert.equal(await unwrap(token, '{"wrappedKey":"kw1.1.AAAA"}'), 422, 'a token verified before this')
    const from = server.stdout().length
    const statuses: number[] = []
    for (let i = 0; i < 10; i++) statuses.push(await unwrap(forged, '{}'))
    assert.deepEqual(statuses, [401, 401, 401, ...Array<number>(7).fill(429)])
    assert.equal(await unwrap(token, '{"wrappedKey":"kw1.1.AAAA"}'), 422, 'a token verified before still goes through')
    const entries = (await auditLinesSince(server, from)).map((line) => JSON.parse(line))
    const refusals = entries.filter((e) => e.errorCode !== 'cannot_unwrap')
    assert.deepEqual(
      refusals.map((e) => [e.outcome, e.errorCode]),
      [...Array(3).fill(['denied', 'unauthenticated']), ['denied', 'rate_limited']],
    )
    assert.equal(refusals[0].principal, undefined)
    assert.match(refusals[0].reason, /^bearer token refused: /)
    assert.equal(refusals[0].issuer, JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).iss)
    const summaryFrom = server.stdout().length
    // The window (3 s) ends, and the next sweep (every window's length) writes its summary: up to 6 s.
    const deadline = Date.now() + 10_000
    while ((await auditLinesSince(server, summaryFrom)).length === 0 && Date.now() < deadline) await sleep(250)
    const [summary, ...others] = (await auditLinesSince(server, summaryFrom)).map((line) => JSON.parse(line))
    assert.equal(others.length, 0)
    assert.deepEqual(
      [summary.operation, summary.alias, summary.outcome, summary.errorCode, summary.unrecorded, summary.remoteAddress],
      ['unwrap', 'default', 'denied', 'rate_limited', 6, '127.0.0.1'],
    )
    assert.equal(await unwrap(forged, '{}'), 401, 'a new window')
  })
})

describe('an early refusal closes the connection (npm start)', () => {
  test('a 401 sent before the announced body arrives: Connection: close, and the socket is closed at once', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-early-'))
    const server = await startServer({ KEYWRAP_HOME: home, KEYWRAP_LOG_LEVEL: 'warn' })
    try {
      const { port } = new URL(server.baseUrl)
      const socket = connect(Number(port), '127.0.0.1')
      await once(socket, 'connect')
      const started = performance.now()
      socket.write(
        'POST /v1/keys/default:unwrap HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a.b.c\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"wrapp',
      )
      let response = ''
      socket.on('data', (chunk: Buffer) => (response += chunk.toString()))
      // The client keeps dribbling; the server must not wait for it.
      const dribble = setInterval(() => socket.writable && socket.write('x'), 100)
      await once(socket, 'close')
      clearInterval(dribble)
      assert.match(response, /^HTTP\/1\.1 401/)
      assert.match(response, /\r\nconnection: close\r\n/i)
      assert.ok(performance.now() - started < 3000, `the socket stayed open ${Math.round(performance.now() - started)} ms`)
    } finally {
      await server.stop()
    }
  })
})
