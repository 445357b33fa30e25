/**
 * What an abusive caller can make keywrap spend, against `npm start` on the Cloud KMS stand-in: failed
 * unwraps are remembered (a repeat costs no Decrypt), and concurrent Decrypts are capped with a short
 * queue, past which callers get 503 `overloaded` with Retry-After at once.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KmsStandIn, type RunningKmsStandIn } from '../support/kms-stand-in.js'
import { runCli, startServer } from '../support/processes.js'

const KEY = 'projects/test/locations/europe-west1/keyRings/keywrap/cryptoKeys/payments'

/** A wrapped key of the right form that no KMS ever produced. */
export const madeUpWrappedKey = (i: number) => `kw1.1.${Buffer.from(`made-up-${i}-`.padEnd(60, 'x')).toString('base64url')}`

describe('the cost of key accesses on Cloud KMS (the stand-in)', () => {
  const kms = new KmsStandIn()
  let running: RunningKmsStandIn
  let env: Record<string, string>
  let token: string

  before(async () => {
    kms.createKey(KEY)
    running = await kms.start()
    const home = await mkdtemp(join(tmpdir(), 'keywrap-abuse-'))
    await writeFile(join(home, 'config.json'), JSON.stringify({ keys: { payments: `gcp-kms://${KEY}` } }))
    env = {
      KEYWRAP_HOME: home,
      KEYWRAP_CONFIG: join(home, 'config.json'),
      KMS_EMULATOR_HOST: running.address,
      GOOGLE_CLOUD_PROJECT: 'test',
      KEYWRAP_LOG_LEVEL: 'warn',
    }
    token = (await runCli(['token', '--sub', 'ops'], env)).stdout.trim()
  })
  after(() => running.close())

  const batchUnwrap = async (baseUrl: string, items: object[]) => {
    const response = await fetch(`${baseUrl}/v1/keys/payments:batchUnwrap`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ items }),
    })
    return { status: response.status, json: (await response.json()) as any }
  }

  test('a batch of 1,000 made-up wrapped keys presented again costs no Decrypt; another context does', async () => {
    const server = await startServer(env)
    try {
      const items = Array.from({ length: 1000 }, (_, i) => ({ wrappedKey: madeUpWrappedKey(i), context: { order: String(i) } }))
      kms.resetCounters()
      const first = await batchUnwrap(server.baseUrl, items)
      assert.equal(first.status, 200)
      assert.ok(first.json.results.every((r: any) => r.error?.code === 'cannot_unwrap'))
      assert.equal(kms.calls.Decrypt, 1000)
      const again = await batchUnwrap(server.baseUrl, items)
      assert.ok(again.json.results.every((r: any) => r.error?.code === 'cannot_unwrap'))
      assert.equal(kms.calls.Decrypt, 1000, 'the repeat was answered from the failures remembered')
      await batchUnwrap(server.baseUrl, [{ wrappedKey: madeUpWrappedKey(0), context: { order: 'other' } }])
      assert.equal(kms.calls.Decrypt, 1001, 'a failure is remembered for its own context only')
      assert.doesNotMatch(server.stdout(), /made-up/, 'nothing presented reaches a log')
    } finally {
      await server.stop()
    }
  })

  test('wrapped keys not in the format (no kw1., not base64url) are 400 invalid_wrapped_key, each, at no Decrypt', async () => {
    const server = await startServer(env)
    try {
      const garbage = ['%%%not base64', 'no-prefix', `kw2.1.${madeUpWrappedKey(0).slice(6)}`, 'kw1.1.%%%%', 'kw1.one.AAAA', 'kw1.1.AAAA==']
      const items = Array.from({ length: 600 }, (_, i) => ({ wrappedKey: `${garbage[i % garbage.length]}`, context: { order: String(i) } }))
      kms.resetCounters()
      const answer = await batchUnwrap(server.baseUrl, items)
      assert.equal(answer.status, 200)
      assert.ok(answer.json.results.every((r: any) => r.error?.code === 'invalid_wrapped_key' && r.error.status === 400))
      assert.equal(kms.calls.Decrypt ?? 0, 0)
      const single = await fetch(`${server.baseUrl}/v1/keys/payments:unwrap`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ wrappedKey: '%%%not base64' }),
      })
      assert.equal(single.status, 400)
      assert.equal(single.headers.get('content-type'), 'application/problem+json')
      assert.equal(((await single.json()) as any).code, 'invalid_wrapped_key')
      assert.equal(kms.calls.Decrypt ?? 0, 0)
    } finally {
      await server.stop()
    }
  })

  /** Ten different keys (unwraps of one key would share one Decrypt), made one after the other. */
  const generateTen = async (baseUrl: string) => {
    const generated: { wrappedKey: string }[] = []
    for (let i = 0; i < 10; i++) {
      const response = await fetch(`${baseUrl}/v1/keys/payments:generateDataKey`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{}',
      })
      generated.push((await response.json()) as { wrappedKey: string })
    }
    return generated
  }

  /** Unwraps them all at once on a KMS that answers Decrypt in 600 ms. */
  const unwrapAllAtOnce = async (baseUrl: string, generated: readonly { wrappedKey: string }[]) => {
    kms.setFaults({ latencyMs: 600, methods: ['Decrypt'] })
    return Promise.all(
      generated.map(async ({ wrappedKey }) => {
        const started = performance.now()
        const response = await fetch(`${baseUrl}/v1/keys/payments:unwrap`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ wrappedKey }),
        })
        const json = (await response.json()) as any
        return { status: response.status, code: json.code, retryAfter: response.headers.get('retry-after'), ms: performance.now() - started }
      }),
    )
  }

  test('Decrypts capped at 2 with 2 waiting: of 10 concurrent unwraps on a slow KMS, 4 answer 200 and 6 get 503 overloaded at once', async () => {
    const server = await startServer({ ...env, KEYWRAP_CACHE_MAX_ENTRIES: '0', KEYWRAP_PROVIDER_MAX_CONCURRENT: '2', KEYWRAP_PROVIDER_MAX_QUEUED: '2' })
    try {
      const answers = await unwrapAllAtOnce(server.baseUrl, await generateTen(server.baseUrl))
      const refused = answers.filter((a) => a.status === 503)
      assert.equal(answers.filter((a) => a.status === 200).length, 4)
      assert.equal(refused.length, 6)
      assert.ok(refused.every((a) => a.code === 'overloaded' && a.retryAfter === '1'))
      assert.ok(
        refused.every((a) => a.ms < 550),
        `refusals waited: ${refused.map((a) => Math.round(a.ms))}`,
      )
    } finally {
      kms.clearFaults()
      await server.stop()
    }
  })

  test('3 requests in flight at most: of 10 concurrent unwraps, 3 answer 200 and 7 get 503 overloaded at once; /healthz still answers', async () => {
    const server = await startServer({ ...env, KEYWRAP_CACHE_MAX_ENTRIES: '0', KEYWRAP_MAX_IN_FLIGHT: '3' })
    try {
      const generated = await generateTen(server.baseUrl)
      const answering = unwrapAllAtOnce(server.baseUrl, generated)
      await new Promise((resolve) => setTimeout(resolve, 200))
      assert.equal((await fetch(`${server.baseUrl}/healthz`)).status, 200)
      const answers = await answering
      const refused = answers.filter((a) => a.status === 503)
      assert.equal(answers.filter((a) => a.status === 200).length, 3)
      assert.equal(refused.length, 7)
      assert.ok(refused.every((a) => a.code === 'overloaded' && a.retryAfter === '1'))
      assert.ok(
        refused.every((a) => a.ms < 550),
        `refusals waited: ${refused.map((a) => Math.round(a.ms))}`,
      )
    } finally {
      kms.clearFaults()
      await server.stop()
    }
  })
})
