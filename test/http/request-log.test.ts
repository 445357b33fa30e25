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
import { requestLoggerOptions } from '../../src/http/request-logger.js'
import { RecordingAuditSink } from '../support/recording-audit-sink.js'

async function requestLines(env: Record<string, string>): Promise<Record<string, any>[]> {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-request-log-'))
  const config = loadConfig({ KEYWRAP_HOME: home, ...env })
  const lines: string[] = []
  const stream = { write: (line: string) => lines.push(line) }
  const audit = new RecordingAuditSink()
  const deps = await composeDependencies(config, { audit, logger: requestLoggerOptions(config.logLevel, stream) })
  const app = await buildApp(deps)
  try {
    const token = await mintDevToken(await loadDevIssuer(home), { subject: 'alice', audience: config.auth.audience, ttlSeconds: 60 })
    const ok = await app.inject({ method: 'POST', url: '/v1/keys/default:generateDataKey', headers: { authorization: `Bearer ${token}` }, payload: {} })
    assert.equal(ok.statusCode, 200)
    const refused = await app.inject({ method: 'POST', url: '/v1/keys/default:generateDataKey', payload: {} })
    assert.equal(refused.statusCode, 401)
    // An audit trail that cannot be written fails the access: 503.
    audit.failing = true
    const failed = await app.inject({ method: 'POST', url: '/v1/keys/default:generateDataKey', headers: { authorization: `Bearer ${token}` }, payload: {} })
    assert.equal(failed.statusCode, 503)
  } finally {
    await app.close()
    await deps.registry.close()
  }
  return lines.map((line) => JSON.parse(line)).filter((line) => line.message === 'request completed')
}

test('at debug every request has a line: successes at DEBUG, refusals at INFO', async () => {
  const lines = await requestLines({ KEYWRAP_LOG_LEVEL: 'debug' })
  assert.deepEqual(
    lines.map((line) => [line.httpRequest.status, line.severity]),
    [
      [200, 'DEBUG'],
      [401, 'INFO'],
      [503, 'ERROR'],
    ],
  )
  assert.equal(lines[0]!.operation, 'generateDataKey')
})

test('at the default level (info) a success leaves no request line, a refusal or a failure does', async () => {
  const lines = await requestLines({})
  assert.deepEqual(
    lines.map((line) => [line.httpRequest.status, line.severity]),
    [
      [401, 'INFO'],
      [503, 'ERROR'],
    ],
  )
})
