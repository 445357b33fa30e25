/**
 * Trust in the shared cache under abuse, against `npm start` with a real Redis: two deployments with
 * their own development keyrings on one Redis and prefix; two on Cloud KMS stand-ins whose keys share
 * a name but not their material; and an old generation put back in Redis to undo a purge.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { rawClient, keysUnder } from '../cache/cache-fixture.js'
import { auditLinesSince } from '../support/audit-lines.js'
import { kmsKeyEnvironment } from '../support/kms-key-environment.js'
import { KmsStandIn, type RunningKmsStandIn } from '../support/kms-stand-in.js'
import { post, runCli, startServer, type RunningServer } from '../support/processes.js'
import { redisUrlForTests, testKeyPrefix } from '../support/redis-server.js'

const KEY = 'projects/test/locations/europe-west1/keyRings/keywrap/cryptoKeys/payments'

let redisUrl: string
let raw: Redis
const prefixes: string[] = []

before(async () => {
  redisUrl = await redisUrlForTests()
  raw = await rawClient(redisUrl)
})

after(async () => {
  for (const prefix of prefixes) {
    const keys = await keysUnder(raw, prefix)
    if (keys.length > 0) await raw.del(...keys)
  }
  await raw.quit()
})

function sharedRedis(name: string): Record<string, string> {
  const prefix = testKeyPrefix(name)
  prefixes.push(prefix)
  return { REDIS_URL: redisUrl, KEYWRAP_REDIS_KEY_PREFIX: prefix, KEYWRAP_REDIS_COMMAND_TIMEOUT_MS: '2000' }
}

async function generate(server: RunningServer, alias: string, token: string, count: number): Promise<{ wrappedKey: string; context: object }[]> {
  const generated = []
  for (let i = 0; i < count; i++) {
    const context = { record: String(i) }
    const response = await post(server, `/v1/keys/${alias}:generateDataKey`, token, { context, includePlaintext: false })
    assert.equal(response.status, 200, JSON.stringify(response.json))
    generated.push({ wrappedKey: response.json.wrappedKey as string, context })
  }
  return generated
}

/** Unwraps each key `rounds` times; how many of the unwraps' audit entries say the provider answered, and from which cache level the others came. */
async function unwrapRounds(server: RunningServer, alias: string, token: string, keys: { wrappedKey: string; context: object }[], rounds: number) {
  const from = server.stdout().length
  for (let round = 0; round < rounds; round++) {
    for (const key of keys) {
      const response = await post(server, `/v1/keys/${alias}:unwrap`, token, key)
      assert.equal(response.status, 200, JSON.stringify(response.json))
    }
  }
  const entries = (await auditLinesSince(server, from)).map((line) => JSON.parse(line)).filter((entry) => entry.operation === 'unwrap')
  const levels: Record<string, number> = {}
  for (const entry of entries) levels[entry.cacheLevel] = (levels[entry.cacheLevel] ?? 0) + 1
  return levels
}

async function readiness(server: RunningServer): Promise<{ cache: string; cacheReason?: string }> {
  return (await (await fetch(`${server.baseUrl}/readyz`)).json()) as { cache: string; cacheReason?: string }
}

/** Keys made by a server of the same KEYWRAP_HOME without Redis, so that none is in the cache of the one under test. */
async function keysMadeElsewhere(env: Record<string, string>, alias: string, count: number) {
  const maker = await startServer(env)
  try {
    const token = (await runCli(['token', '--sub', 'maker'], env)).stdout.trim()
    return await generate(maker, alias, token, count)
  } finally {
    await maker.stop()
  }
}

describe('two deployments, each with its own development keyring, on one Redis and prefix', () => {
  test('both cache (L1 and their own L2): 20 keys × 3 unwraps each → 20 provider calls each, not 60; /readyz ok; no error', async () => {
    const redis = sharedRedis('two-keyrings')
    const homes = [await mkdtemp(join(tmpdir(), 'keywrap-one-')), await mkdtemp(join(tmpdir(), 'keywrap-two-'))]
    const envs = homes.map((home) => ({ KEYWRAP_HOME: home }))
    const keys = [await keysMadeElsewhere(envs[0]!, 'default', 20), await keysMadeElsewhere(envs[1]!, 'default', 20)]
    const servers = [await startServer({ ...envs[0]!, ...redis }), await startServer({ ...envs[1]!, ...redis })]
    try {
      const tokens = await Promise.all(envs.map(async (env) => (await runCli(['token', '--sub', 'ops'], env)).stdout.trim()))
      // Both first, so that each finds the other's epoch record there before it unwraps.
      await generate(servers[0]!, 'default', tokens[0]!, 1)
      await generate(servers[1]!, 'default', tokens[1]!, 1)
      for (const i of [0, 1]) {
        const levels = await unwrapRounds(servers[i]!, 'default', tokens[i]!, keys[i]!, 3)
        assert.deepEqual(levels, { provider: 20, l1: 40 }, `instance ${i + 1}`)
        assert.deepEqual(await readiness(servers[i]!), { status: 'ready', keys: { total: 1, notReady: 0 }, cache: 'ok', audit: 'ok' })
        assert.doesNotMatch(servers[i]!.stderr(), /"severity":"ERROR"/)
      }
      assert.equal((await keysUnder(raw, `${redis.KEYWRAP_REDIS_KEY_PREFIX}epoch:`)).length, 2, 'an epoch record per keyring')
    } finally {
      await Promise.all(servers.map((server) => server.stop()))
    }
  })
})

describe('two deployments on Cloud KMS (stand-ins) whose keys share a name but not their material, on one Redis and prefix', () => {
  const kmsOne = new KmsStandIn()
  const kmsTwo = new KmsStandIn()
  let running: RunningKmsStandIn[] = []
  let envs: Record<string, string>[] = []

  before(async () => {
    const redis = sharedRedis('two-kms')
    const one = await kmsKeyEnvironment(kmsOne, KEY, 'payments', { KEYWRAP_CACHE_KEK_ALIAS: 'payments', KEYWRAP_LOG_LEVEL: 'warn' })
    const two = await kmsKeyEnvironment(kmsTwo, KEY, 'payments', { KEYWRAP_CACHE_KEK_ALIAS: 'payments', KEYWRAP_LOG_LEVEL: 'warn' })
    running = [one.running, two.running]
    envs = [
      { ...one.env, ...redis },
      { ...two.env, ...redis },
    ]
  })
  after(() => Promise.all(running.map((r) => r.close())))

  test('the second cannot open the first one’s epoch secret: L1 still works (20 Decrypts for 60 unwraps, and 1 for the secret), one error line naming KEYWRAP_CACHE_KEK_ALIAS, /readyz degraded with the reason', async () => {
    const { KEYWRAP_REDIS_KEY_PREFIX: _prefix, REDIS_URL: _url, ...withoutRedis } = envs[1]!
    const keys = await keysMadeElsewhere(withoutRedis, 'payments', 20)
    const first = await startServer(envs[0]!)
    const second = await startServer(envs[1]!)
    try {
      const tokens = await Promise.all(envs.map(async (env) => (await runCli(['token', '--sub', 'ops'], env)).stdout.trim()))
      await generate(first, 'payments', tokens[0]!, 1)
      const [record] = await keysUnder(raw, `${envs[0]!.KEYWRAP_REDIS_KEY_PREFIX}epoch:`)
      const recordBefore = await raw.getBuffer(record!)
      kmsTwo.resetCounters()
      const levels = await unwrapRounds(second, 'payments', tokens[1]!, keys, 3)
      assert.deepEqual(levels, { provider: 20, l1: 40 })
      assert.equal(kmsTwo.calls.Decrypt, 21, '20 keys, and one try at the epoch secret')
      const ready = await readiness(second)
      assert.deepEqual([ready.cache, ready.cacheReason], ['degraded', 'cache_kek_refused'])
      const errors = second
        .stderr()
        .split('\n')
        .filter((line) => line.includes('"severity":"ERROR"'))
      assert.equal(errors.length, 1, second.stderr())
      assert.match(errors[0]!, /KEYWRAP_CACHE_KEK_ALIAS=payments/)
      assert.deepEqual(await raw.getBuffer(record!), recordBefore, 'the first deployment’s record is left alone')
      assert.equal((await readiness(first)).cache, 'ok')
    } finally {
      await Promise.all([first.stop(), second.stop()])
    }
  })
})

describe('an old generation put back in Redis after a purge (two instances on one Cloud KMS stand-in)', () => {
  const kms = new KmsStandIn()
  let running: RunningKmsStandIn
  let env: Record<string, string>

  before(async () => {
    ;({ running, env } = await kmsKeyEnvironment(kms, KEY, 'payments', {
      KEYWRAP_CACHE_KEK_ALIAS: 'payments',
      KEYWRAP_CACHE_PURGE_BOUND_MS: '0',
      ...sharedRedis('replay'),
    }))
  })
  after(() => running.close())

  test('is refused by the instance that saw the purge: the purged key costs a Decrypt again instead of being an L2 hit', async () => {
    const a = await startServer(env)
    const b = await startServer({ ...env, KEYWRAP_CACHE_MAX_ENTRIES: '0' })
    try {
      const token = (await runCli(['token', '--sub', 'ops'], env)).stdout.trim()
      const [key] = await generate(a, 'payments', token, 1)
      assert.deepEqual(await unwrapRounds(b, 'payments', token, [key!], 1), { l2: 1 })
      kms.resetCounters()
      const [generation] = await keysUnder(raw, `${env.KEYWRAP_REDIS_KEY_PREFIX}gen:`)
      const old = (await raw.getBuffer(generation!))!

      assert.equal((await post(a, '/v1/keys/payments:purgeCache', token, {})).status, 200)
      assert.deepEqual(await unwrapRounds(b, 'payments', token, [key!], 1), { provider: 1 })
      assert.equal(kms.calls.Decrypt, 1)

      await raw.set(generation!, old, 'PX', 60_000)
      assert.deepEqual(await unwrapRounds(b, 'payments', token, [key!], 1), { provider: 1 }, 'not an L2 hit')
      assert.equal(kms.calls.Decrypt, 2)
      assert.match(b.stderr(), /generation record of this alias that keywrap refuses/)
      assert.ok(!(await raw.getBuffer(generation!))!.equals(old), 'the old generation was replaced')
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })
})
