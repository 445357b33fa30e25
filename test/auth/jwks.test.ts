/**
 * Remote key sets: warm-up, rotation, an endpoint that is down or slow or answers nonsense, and
 * floods of unknown `kid`s, on the real timings with a frozen Date moved by hand.
 */
import { after, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { exportJWK } from 'jose'
import { createAuthenticator } from '../../src/auth/create-authenticator.js'
import type { JwtAuthenticator } from '../../src/auth/authenticator.js'
import type { Logger } from '../../src/support/logger.js'
import type { JwksSettings } from '../../src/config/auth-settings.js'
import { Metrics } from '../../src/metrics/metrics.js'
import { generateSigningKey, startAttackerListener, startJwksServer, type JwksServer } from '../support/jwks-server.js'
import { bearer, failureCounts, ISSUER, jwksIssuer, refused, settingsWith, sign } from './fixtures.js'

const first = await generateSigningKey('RS256', 'first')
const second = await generateSigningKey('ES256', 'second')
const mallory = await generateSigningKey('ES256', 'mallory')

const servers: JwksServer[] = []
after(async () => {
  await Promise.all(servers.map((server) => server.close()))
})

/**
 * jose times its cache age and cooldown with Date.now(), as RemoteJwks does its back-off: a frozen
 * Date, moved by tick(), makes "within" and "after" exact however loaded the machine is. Timers,
 * fetch timeouts and the server's delays stay real.
 */
function frozenDate(context: TestContext): { tick(milliseconds: number): void } {
  context.mock.timers.enable({ apis: ['Date'], now: Date.now() })
  return { tick: (milliseconds) => context.mock.timers.tick(milliseconds) }
}

interface Setup {
  readonly server: JwksServer
  readonly authenticator: JwtAuthenticator
  readonly metrics: Metrics
  readonly logged: { level: string; details: Record<string, unknown>; message: string }[]
}

async function setup(jwks: Partial<JwksSettings>, options: { warm?: boolean } = {}): Promise<Setup> {
  const server = await startJwksServer([first])
  servers.push(server)
  const metrics = new Metrics()
  const logged: Setup['logged'] = []
  const logger: Logger = {
    debug: (details, message) => logged.push({ level: 'debug', details: details as Record<string, unknown>, message }),
    info: (details, message) => logged.push({ level: 'info', details: details as Record<string, unknown>, message }),
    warn: (details, message) => logged.push({ level: 'warn', details: details as Record<string, unknown>, message }),
    error: (details, message) => logged.push({ level: 'error', details: details as Record<string, unknown>, message }),
  }
  const settings = settingsWith([jwksIssuer(server.url)], {
    jwks: { timeoutSeconds: 1, cooldownSeconds: 30, cacheMaxAgeSeconds: 600, staleIfErrorSeconds: 3600, ...jwks },
  })
  const authenticator = await createAuthenticator(settings, { home: '/nonexistent', mode: 'production', metrics, logger })
  if (options.warm !== false) await authenticator.warm()
  return { server, authenticator, metrics, logged }
}

test('warm() fetches the key set once; the first request needs no fetch', async () => {
  const { server, authenticator } = await setup({})
  assert.equal(server.fetches, 1)
  assert.deepEqual(await authenticator.authenticate(bearer(await sign(first))), { id: 'alice', issuer: ISSUER })
  assert.equal(server.fetches, 1)
})

test('warm() with the endpoint down logs a warning and does not throw; the first request tries again', async () => {
  const server = await startJwksServer([first])
  servers.push(server)
  server.availability = 'unavailable'
  const logged: string[] = []
  const authenticator = await createAuthenticator(settingsWith([jwksIssuer(server.url)]), {
    home: '/nonexistent',
    mode: 'production',
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: (details, message) => logged.push(`${message}: ${JSON.stringify(details)}`),
      error: (details, message) => logged.push(`${message}: ${JSON.stringify(details)}`),
    },
  })
  await authenticator.warm()
  assert.equal(logged.length, 1)
  assert.match(logged[0]!, /issuer keys not fetched at start-up.*HTTP 503/)
  server.availability = 'up'
  assert.ok(await authenticator.authenticate(bearer(await sign(first))))
  assert.equal(server.fetches, 2)
})

test('rotation: a new kid is accepted once the cooldown has passed, without a restart', async (context) => {
  const clock = frozenDate(context)
  const { server, authenticator } = await setup({ cooldownSeconds: 30 })
  // Published after our fetch, and within the cooldown: refused, and no fetch.
  server.setKeys([first, second])
  await refused(authenticator, bearer(await sign(second)))
  assert.equal(server.fetches, 1)
  clock.tick(30_001)
  assert.deepEqual(await authenticator.authenticate(bearer(await sign(second))), { id: 'alice', issuer: ISSUER })
  assert.equal(server.fetches, 2)
})

test('rotation: a removed key is refused once the cache age has passed, cached tokens included', async (context) => {
  const clock = frozenDate(context)
  const { server, authenticator, metrics } = await setup({ cooldownSeconds: 30, cacheMaxAgeSeconds: 600 })
  server.setKeys([first, second])
  await authenticator.warm()
  const early = bearer(await sign(first))
  assert.ok(await authenticator.authenticate(early))
  server.setKeys([second])
  // Within the cache age the issuer's withdrawal is not yet known: the documented window.
  assert.ok(await authenticator.authenticate(bearer(await sign(first, { sub: 'bob' }))))
  assert.ok(await authenticator.authenticate(early))
  clock.tick(600_001)
  await refused(authenticator, early)
  await refused(authenticator, bearer(await sign(first, { sub: 'carol' })))
  assert.ok(await authenticator.authenticate(bearer(await sign(second))))
  assert.equal(server.fetches, 3)
  assert.deepEqual(await failureCounts(metrics), { unknown_key: 2 })
})

test('endpoint down, cache fresh: tokens are verified from the cache, and nothing is fetched', async () => {
  const { server, authenticator } = await setup({})
  server.availability = 'dropping'
  for (let index = 0; index < 5; index++) assert.ok(await authenticator.authenticate(bearer(await sign(first, { sub: `u${index}` }))))
  assert.equal(server.fetches, 1)
})

test('endpoint down, cache stale but within staleIfError: the last set is used, one failed fetch per cooldown', async (context) => {
  const clock = frozenDate(context)
  const { server, authenticator, logged, metrics } = await setup({ cooldownSeconds: 30, cacheMaxAgeSeconds: 600, staleIfErrorSeconds: 3600 })
  server.availability = 'unavailable'
  clock.tick(601_000)
  assert.ok(await authenticator.authenticate(bearer(await sign(first, { sub: 'a' }))))
  assert.equal(server.fetches, 2, 'one failed attempt')
  assert.ok(await authenticator.authenticate(bearer(await sign(first, { sub: 'b' }))))
  assert.equal(server.fetches, 2, 'no attempt during the back-off')
  assert.ok(logged.some((entry) => entry.level === 'warn' && /cannot be fetched/.test(entry.message)))
  // A kid the stale set does not have is refused, not waited for.
  await refused(authenticator, bearer(await sign(second)))
  clock.tick(30_001)
  server.availability = 'up'
  server.setKeys([first, second])
  assert.ok(await authenticator.authenticate(bearer(await sign(second))))
  assert.equal(server.fetches, 3)
  assert.deepEqual(await failureCounts(metrics), { unknown_key: 1 })
})

test('endpoint down, cache too stale (or none): 503 issuer_unavailable with Retry-After, no fetch storm', async (context) => {
  const clock = frozenDate(context)
  const { server, authenticator, metrics } = await setup({ cooldownSeconds: 30, cacheMaxAgeSeconds: 600, staleIfErrorSeconds: 3600 })
  server.availability = 'unavailable'
  clock.tick(600_000 + 3_600_000 + 1)
  const error = await refused(authenticator, bearer(await sign(first)), 'issuer_unavailable')
  assert.equal(error.status, 503)
  assert.equal(error.retryAfterSeconds, 30)
  assert.doesNotMatch(error.detail ?? '', /127\.0\.0\.1|certs|HTTP/, 'the detail does not describe the endpoint')
  const fetches = server.fetches
  clock.tick(20_000)
  await Promise.all(Array.from({ length: 50 }, async () => refused(authenticator, bearer(await sign(first)), 'issuer_unavailable')))
  assert.equal(server.fetches, fetches)
  assert.equal((await failureCounts(metrics)).issuer_unavailable, 51)
  assert.equal((await refused(authenticator, bearer(await sign(first)), 'issuer_unavailable')).retryAfterSeconds, 10, 'what is left of the back-off')
})

test('never fetched and the endpoint unreachable: 503; once it is back, tokens are accepted', async (context) => {
  const clock = frozenDate(context)
  const { server, authenticator } = await setup({ cooldownSeconds: 30 }, { warm: false })
  server.availability = 'dropping'
  await refused(authenticator, bearer(await sign(first)), 'issuer_unavailable')
  server.availability = 'up'
  await refused(authenticator, bearer(await sign(first)), 'issuer_unavailable')
  assert.equal(server.fetches, 1, 'no new attempt during the back-off')
  clock.tick(30_001)
  assert.ok(await authenticator.authenticate(bearer(await sign(first))))
})

test('a slow endpoint is given up on after timeoutSeconds', async () => {
  const { server, authenticator } = await setup({ timeoutSeconds: 0.2 }, { warm: false })
  server.delayMs = 2000
  const started = performance.now()
  await refused(authenticator, bearer(await sign(first)), 'issuer_unavailable')
  assert.ok(performance.now() - started < 1500)
})

test('answers that are not a public key set are not trusted: HTML, private keys, a huge body, a redirect', async () => {
  const attacker = await startAttackerListener([mallory])
  try {
    const privateJwk = { ...(await exportJWK(mallory.privateKey)), kid: 'mallory', alg: 'ES256' }
    const bodies = [
      '<html>Sign in</html>',
      JSON.stringify({ keys: [privateJwk] }),
      JSON.stringify({ keys: 'none' }),
      JSON.stringify({ keys: [mallory.jwk], pad: 'x'.repeat(1_100_000) }),
    ]
    for (const body of bodies) {
      const { server, authenticator } = await setup({ cooldownSeconds: 0.1 }, { warm: false })
      server.setBody(body)
      await refused(authenticator, bearer(await sign(mallory)), 'issuer_unavailable')
    }
    const { server, authenticator } = await setup({ cooldownSeconds: 0.1 }, { warm: false })
    server.redirectTo = `${attacker.url}/certs`
    await refused(authenticator, bearer(await sign(mallory)), 'issuer_unavailable')
    assert.equal(attacker.requests.length, 0, 'the redirect was followed')
  } finally {
    await attacker.close()
  }
})

/** 1000 tokens, each with a kid nobody published; signed ahead so that only verification is timed. */
function unknownKidTokens(): Promise<string[]> {
  return Promise.all(Array.from({ length: 1000 }, () => sign({ ...mallory, kid: randomUUID() })))
}

async function flood(authenticator: JwtAuthenticator, tokens: readonly string[]): Promise<void> {
  const results = await Promise.allSettled(tokens.map((token) => authenticator.authenticate(bearer(token))))
  assert.ok(results.every((result) => result.status === 'rejected' && (result.reason as { code: string }).code === 'unauthenticated'))
}

test('1000 concurrent unknown kids cost one fetch: cold start', async () => {
  const tokens = await unknownKidTokens()
  const { server, authenticator, metrics } = await setup({}, { warm: false })
  server.delayMs = 50
  await flood(authenticator, tokens)
  assert.equal(server.fetches, 1)
  assert.equal((await failureCounts(metrics)).unknown_key, 1000)
})

test('1000 concurrent unknown kids cost one fetch once the cooldown has passed, and none within it', async (context) => {
  const [first, second, third] = await Promise.all([unknownKidTokens(), unknownKidTokens(), unknownKidTokens()])
  frozenDate(context)
  const { server, authenticator } = await setup({ cooldownSeconds: 30 })
  server.delayMs = 50
  await flood(authenticator, first!)
  assert.equal(server.fetches, 1, 'within the cooldown of the warm-up fetch: no fetch')
  context.mock.timers.tick(30_001)
  await flood(authenticator, second!)
  assert.equal(server.fetches, 2, 'after the cooldown: exactly one')
  await flood(authenticator, third!)
  assert.equal(server.fetches, 2, 'and the cooldown starts again')
})

test('1000 concurrent valid tokens on a cold start cost one fetch', async () => {
  const { server, authenticator } = await setup({}, { warm: false })
  server.delayMs = 50
  const tokens = await Promise.all(Array.from({ length: 1000 }, (_, index) => sign(first, { sub: `user-${index}` })))
  const principals = await Promise.all(tokens.map((token) => authenticator.authenticate(bearer(token))))
  assert.equal(new Set(principals.map((principal) => principal.id)).size, 1000)
  assert.equal(server.fetches, 1)
})
