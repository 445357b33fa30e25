/** The request log: one line per completed request, at a level that follows its status. */
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { buildApp } from '../../src/app.js'
import { loadDevIssuer, mintDevToken } from '../../src/auth/dev-issuer.js'
import { composeDependencies } from '../../src/compose.js'
import { loadConfig } from '../../src/config/load-config.js'
import { REQUEST_LOG_LIMITS, requestLoggerOptions } from '../../src/http/request-logger.js'
import { RecordingAuditSink } from '../support/recording-audit-sink.js'

async function requestLines(env: Record<string, string>): Promise<{ lines: Record<string, any>[]; requestIds: string[] }> {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-request-log-'))
  const config = loadConfig({ KEYWRAP_HOME: home, ...env })
  const lines: string[] = []
  const stream = { write: (line: string) => lines.push(line) }
  const audit = new RecordingAuditSink()
  const requestIds: string[] = []
  const deps = await composeDependencies(config, { audit, logger: requestLoggerOptions(config.logLevel, stream) })
  const app = await buildApp(deps)
  try {
    const token = await mintDevToken(await loadDevIssuer(home), { subject: 'alice', audience: config.auth.audience, ttlSeconds: 60 })
    const ok = await app.inject({ method: 'POST', url: '/v1/keys/default:generateDataKey', headers: { authorization: `Bearer ${token}` }, payload: {} })
    assert.equal(ok.statusCode, 200)
    requestIds.push(String(ok.headers['x-request-id']))
    const refused = await app.inject({ method: 'POST', url: '/v1/keys/default:generateDataKey', payload: {} })
    assert.equal(refused.statusCode, 401)
    requestIds.push(String(refused.headers['x-request-id']))
    // An audit trail that cannot be written fails the access: 503.
    audit.failing = true
    const failed = await app.inject({ method: 'POST', url: '/v1/keys/default:generateDataKey', headers: { authorization: `Bearer ${token}` }, payload: {} })
    assert.equal(failed.statusCode, 503)
    requestIds.push(String(failed.headers['x-request-id']))
  } finally {
    await app.close()
    await deps.registry.close()
  }
  return { lines: lines.map((line) => JSON.parse(line)), requestIds }
}

const completed = (lines: Record<string, any>[]) => lines.filter((line) => line.message === 'request completed')

test('at debug every request has a line: successes at DEBUG, refusals at INFO', async () => {
  const { lines: all, requestIds } = await requestLines({ KEYWRAP_LOG_LEVEL: 'debug' })
  const lines = completed(all)
  assert.deepEqual(
    lines.map((line) => [line.httpRequest.status, line.severity]),
    [
      [200, 'DEBUG'],
      [401, 'INFO'],
      [503, 'ERROR'],
    ],
  )
  assert.equal(lines[0]!.operation, 'generateDataKey')
  assert.deepEqual(
    lines.map((line) => line.reqId),
    requestIds,
    'each line names its request',
  )
})

test('at the default level (info) a success leaves no request line, a refusal or a failure does', async () => {
  const { lines: all, requestIds } = await requestLines({})
  const lines = completed(all)
  assert.deepEqual(
    lines.map((line) => [line.httpRequest.status, line.severity]),
    [
      [401, 'INFO'],
      [503, 'ERROR'],
    ],
  )
  assert.deepEqual(
    lines.map((line) => line.reqId),
    requestIds.slice(1),
    'each line names its request',
  )
  // The failure's own line (problem-replies) names the request too.
  const failure = all.find((line) => line.message === 'request failed')
  assert.equal(failure?.reqId, requestIds[2])
})

test('what the client chose (path, User-Agent, forwarded address) is bounded in its request line', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-request-log-'))
  const config = loadConfig({ KEYWRAP_HOME: home, KEYWRAP_TRUST_PROXY: 'true' })
  const lines: string[] = []
  const deps = await composeDependencies(config, {
    audit: new RecordingAuditSink(),
    logger: requestLoggerOptions(config.logLevel, { write: (line: string) => lines.push(line) }),
  })
  const app = await buildApp(deps)
  const userAgent = `agent/${'u'.repeat(10_000)}`
  try {
    const forwarded = `${'f'.repeat(3000)}`
    const path = `/v1/${'p'.repeat(6000)}`
    const response = await app.inject({ method: 'POST', url: path, headers: { 'user-agent': userAgent, 'x-forwarded-for': forwarded }, payload: {} })
    assert.equal(response.statusCode, 404)
  } finally {
    await app.close()
    await deps.registry.close()
  }
  const [line] = completed(lines.map((text) => JSON.parse(text)))
  assert.ok(line, 'the refusal has its line')
  const raw = lines.find((text) => text.includes('request completed'))!
  assert.ok(raw.length < 2000, `the line is ${raw.length} characters for a 19 KB request`)
  assert.equal(line.httpRequest.userAgent, `${userAgent.slice(0, REQUEST_LOG_LIMITS.userAgent)}…[+${userAgent.length - REQUEST_LOG_LIMITS.userAgent} chars]`)
  assert.match(line.httpRequest.requestUrl, /^\/v1\/p+…\[\+\d+ chars\]$/)
  assert.ok(line.httpRequest.remoteIp.length <= REQUEST_LOG_LIMITS.remoteIp + 20)
})
