/** `keywrap token` run with another KEYWRAP_HOME than the server's, as a new user does from another directory. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadDevIssuer, mintDevToken } from '../src/auth/dev-issuer.js'
import { DEFAULT_AUDIENCE } from '../src/config/config.js'
import { runCli, startServer } from './support/processes.js'

test('the token says it created a new issuer and where; the server tells the caller why it refuses the token', async () => {
  const serverHome = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
  const otherHome = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
  const server = await startServer({ KEYWRAP_HOME: serverHome })
  try {
    const first = await runCli(['token'], { KEYWRAP_HOME: otherHome })
    assert.equal(first.code, 0)
    assert.equal(
      first.stderr,
      `keywrap: created a new development issuer in ${join(otherHome, 'dev-issuer.json')}; only a server started with KEYWRAP_HOME=${otherHome} trusts its tokens\n`,
    )
    const again = await runCli(['token'], { KEYWRAP_HOME: otherHome })
    assert.equal(again.stderr, '', 'said once, when the issuer is created')
    const trusted = await runCli(['token'], { KEYWRAP_HOME: serverHome })
    assert.equal(trusted.stderr, '', 'the server created its issuer; the token uses it')

    const call = (token: string) => fetch(`${server.baseUrl}/v1/keys`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal((await call(trusted.stdout.trim())).status, 200)

    const elsewhere = await call(first.stdout.trim())
    assert.equal(elsewhere.status, 401)
    assert.equal(elsewhere.headers.get('content-type'), 'application/problem+json')
    const detail =
      "The token names the development issuer but was not signed by this server's: mint it with the server's KEYWRAP_HOME (keywrap token says when it creates a new issuer, and where)."
    assert.equal(((await elsewhere.json()) as { detail: string }).detail, detail)
    assert.equal(elsewhere.headers.get('www-authenticate'), `Bearer realm="keywrap", error="invalid_token", error_description="${detail}"`)

    const expired = await call(await mintDevToken(await loadDevIssuer(serverHome), { subject: 'alice', audience: DEFAULT_AUDIENCE, ttlSeconds: -120 }))
    assert.equal(expired.status, 401)
    assert.equal(((await expired.json()) as { detail: string }).detail, 'The bearer token has expired; get a new one.')
    const refusals = () =>
      server
        .stdout()
        .split('\n')
        .filter((line) => line.includes('bearer token refused'))
        .map((line) => (JSON.parse(line) as { reason: string }).reason)
    // Log lines are written in batches.
    for (let i = 0; i < 50 && refusals().length < 2; i++) await sleep(50)
    assert.deepEqual(refusals(), ['signature', 'expired'], 'the log tells a forged-looking token from an expired one')
  } finally {
    await server.stop()
  }
})
