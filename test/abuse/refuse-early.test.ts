/**
 * Refusing early and cheaply, against `npm start`: a caller with no grant gets one 403 and one audit
 * entry for a whole batch; a 400 stays small whatever the request; audit entries have bounded fields.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditLinesSince } from '../support/audit-lines.js'
import { runCli, startServer, type RunningServer } from '../support/processes.js'

describe('refusing early and cheaply (npm start)', () => {
  let server: RunningServer
  let ops: string
  let mallory: string

  before(async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-refuse-'))
    await writeFile(join(home, 'config.json'), JSON.stringify({ policy: { grants: [{ principals: ['ops'], keys: ['*'], operations: ['*'] }] } }))
    const env = { KEYWRAP_HOME: home, KEYWRAP_CONFIG: join(home, 'config.json'), KEYWRAP_LOG_LEVEL: 'warn' }
    ops = (await runCli(['token', '--sub', 'ops'], env)).stdout.trim()
    mallory = (await runCli(['token', '--sub', 'mallory'], env)).stdout.trim()
    server = await startServer(env)
  })
  after(() => server.stop())

  const send = (path: string, token: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${server.baseUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers }, body })

  test('no grant: a 1,000-item batch with a 15 KB User-Agent is one 403 and one audit entry of under 2 KB', async () => {
    const from = server.stdout().length
    const items = Array.from({ length: 1000 }, () => ({ wrappedKey: 'x' }))
    const response = await send('/v1/keys/default:batchUnwrap', mallory, JSON.stringify({ items }), { 'user-agent': 'A'.repeat(15_000) })
    assert.equal(response.status, 403)
    assert.equal(((await response.json()) as { code: string }).code, 'forbidden')
    const lines = await auditLinesSince(server, from)
    assert.equal(lines.length, 1)
    const entry = JSON.parse(lines[0]!)
    assert.deepEqual([entry.principal, entry.outcome, entry.errorCode, entry.batchSize], ['mallory', 'denied', 'forbidden', 1000])
    assert.match(entry.userAgent, /^A{256}…\[\+14744 chars\]$/)
    assert.ok(lines[0]!.length < 2048, `${lines[0]!.length} bytes`)
  })

  test('a body of 90,000 unknown properties gets a 400 of under 4 KB', async () => {
    const unknown = Object.fromEntries(Array.from({ length: 90_000 }, (_, i) => [`p${i}`, 0]))
    const response = await send('/v1/keys/default:unwrap', ops, JSON.stringify({ wrappedKey: 'kw1.1.AAAA', ...unknown }))
    assert.equal(response.status, 400)
    const body = await response.text()
    assert.ok(body.length <= 4096, `${body.length} bytes`)
    assert.equal(JSON.parse(body).errors.length, 5)
  })

  test('a 400 naming a very long unknown property, and a 404 at a very long path, stay under 4 KB', async () => {
    const long = await send('/v1/keys/default:unwrap', ops, JSON.stringify({ wrappedKey: 'kw1.1.AAAA', ['q'.repeat(500_000)]: 1 }))
    assert.equal(long.status, 400)
    assert.ok((await long.text()).length <= 4096)
    const notFound = await fetch(`${server.baseUrl}/${'n'.repeat(12_000)}`)
    assert.equal(notFound.status, 404)
    assert.ok((await notFound.text()).length <= 4096)
  })

  test('a granted access with a 15 KB User-Agent and a 32-entry context of long values: its audit entry is cut, with markers, under 8 KB', async () => {
    const context = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`.padEnd(128, 'k'), 'v'.repeat(1024)]))
    const from = server.stdout().length
    const response = await send('/v1/keys/default:generateDataKey', ops, JSON.stringify({ context }), { 'user-agent': 'B'.repeat(15_000) })
    assert.equal(response.status, 200)
    const [line] = await auditLinesSince(server, from)
    const entry = JSON.parse(line!)
    assert.equal(entry.outcome, 'allowed')
    assert.equal(Object.keys(entry.context).length, 17)
    assert.equal(entry.context['…'], '+16 entries')
    assert.match(entry.context[`k0`.padEnd(128, 'k')], /^v{256}…\[\+768 chars\]$/)
    assert.ok(line!.length < 8192, `${line!.length} bytes`)
  })
})

describe('the request log of npm start (info)', () => {
  test('a refusal with an 8 KB User-Agent and a 6 KB path: its request line is cut, with markers, under 2 KB', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-request-line-'))
    const server = await startServer({ KEYWRAP_HOME: home })
    try {
      const response = await fetch(`${server.baseUrl}/v1/${'p'.repeat(6000)}`, { headers: { 'user-agent': 'C'.repeat(8000) } })
      assert.equal(response.status, 404)
      await response.text()
      const deadline = Date.now() + 5000
      let line: string | undefined
      while (!line && Date.now() < deadline) {
        line = server
          .stdout()
          .split('\n')
          .find((text) => text.includes('"request completed"'))
        if (!line) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      assert.ok(line, 'the refusal has a request line')
      const { httpRequest } = JSON.parse(line)
      assert.match(httpRequest.userAgent, /^C{256}…\[\+7744 chars\]$/)
      assert.match(httpRequest.requestUrl, /^\/v1\/p{508}…\[\+5492 chars\]$/)
      assert.ok(line.length < 2048, `${line.length} bytes`)
    } finally {
      await server.stop()
    }
  })
})
