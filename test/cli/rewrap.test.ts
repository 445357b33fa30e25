/**
 * `keywrap rewrap` as a user runs it: the CLI process against `npm start` with a Cloud KMS key (the
 * stand-in over real gRPC), the DEK cache off so that every rewrap is a Decrypt and an Encrypt.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { readFile, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { kmsKeyEnvironment } from '../support/kms-key-environment.js'
import { KmsStandIn, type RunningKmsStandIn } from '../support/kms-stand-in.js'
import { post, REPO_ROOT, runCli, startServer, type RunningServer } from '../support/processes.js'

const KEY = 'projects/test/locations/europe-west1/keyRings/keywrap/cryptoKeys/campaign'
const KEYS = 600

interface Generated {
  readonly id: number
  readonly wrappedKey: string
  readonly plaintext: string
  readonly context: Record<string, string>
}

describe('keywrap rewrap against npm start and the Cloud KMS stand-in', () => {
  const kms = new KmsStandIn()
  let running: RunningKmsStandIn
  let server: RunningServer
  let home: string
  let env: Record<string, string>
  let token: string
  let generated: Generated[]
  let input: string
  let outputs = 0

  const cli = (args: string[], extraEnv: Record<string, string> = {}) =>
    runCli(['rewrap', '--url', server.baseUrl, '--alias', 'campaign', ...args], { ...env, ...extraEnv })
  const newOutput = () => join(home, `out-${++outputs}.jsonl`)
  const readOutput = async (file: string) =>
    (await readFile(file, 'utf8'))
      .split('\n')
      .slice(0, -1)
      .map((line) => JSON.parse(line))

  /** Unwraps every output line's key and checks it gives the DEK its input line's key had. */
  async function assertSameDeks(lines: any[]): Promise<void> {
    for (let start = 0; start < lines.length; start += 1000) {
      const items = lines.slice(start, start + 1000).map((line) => ({ wrappedKey: line.wrappedKey, context: line.context }))
      const answer = await post(server, '/v1/keys/campaign:batchUnwrap', token, { items })
      assert.equal(answer.status, 200)
      answer.json.results.forEach((result: any, offset: number) => {
        assert.equal(result.plaintext, generated[lines[start + offset].id]!.plaintext, `line ${start + offset}`)
        assert.equal(result.primary, true)
      })
    }
  }

  before(async () => {
    ;({ running, home, env } = await kmsKeyEnvironment(kms, KEY, 'campaign', { KEYWRAP_CACHE_MAX_ENTRIES: '0' }))
    token = (await runCli(['token', '--sub', 'ops'], env)).stdout.trim()
    server = await startServer(env)
    generated = []
    for (let start = 0; start < KEYS; start += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, KEYS - start) }, async (_, offset) => {
          const id = start + offset
          const context = { record: String(id) }
          const answer = await post(server, '/v1/keys/campaign:generateDataKey', token, { context })
          assert.equal(answer.status, 200)
          return { id, wrappedKey: answer.json.wrappedKey, plaintext: answer.json.plaintext, context }
        }),
      )
      generated.push(...batch)
    }
    input = join(home, 'in.jsonl')
    await writeFile(input, generated.map(({ id, wrappedKey, context }) => `${JSON.stringify({ id, wrappedKey, context, owner: 'billing' })}\n`).join(''))
    kms.rotate(KEY)
    await sleep(1500)
  })
  after(async () => {
    await server?.stop()
    await running?.close()
  })

  test('--dry-run counts the keys not under the primary version, per version, and changes nothing', async () => {
    const mixed = join(home, 'mixed.jsonl')
    const fresh = await post(server, '/v1/keys/campaign:generateDataKey', token, {})
    await writeFile(
      mixed,
      [...generated.slice(0, 3).map((g) => JSON.stringify(g.wrappedKey)), JSON.stringify(fresh.json.wrappedKey), 'not json', ''].join('\n'),
    )
    kms.resetCounters()
    const run = await cli(['--in', mixed, '--dry-run', '--token', token])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(
      run.stdout,
      'campaign: primary version 2\n  version 1: 3\n  version 2: 1 (primary)\nwould rewrap 3, already current 1, 1 lines are not wrapped keys\n',
    )
    assert.equal(kms.calls.Encrypt + kms.calls.Decrypt, 0)
  })

  test('without --url, the service is KEYWRAP_URL; --url wins over it', async () => {
    const dryRun = ['rewrap', '--alias', 'campaign', '--in', input, '--dry-run']
    const fromEnvironment = await runCli(dryRun, { ...env, KEYWRAP_URL: server.baseUrl, KEYWRAP_TOKEN: token })
    assert.equal(fromEnvironment.code, 0, fromEnvironment.stderr)
    assert.match(fromEnvironment.stdout, /^campaign: primary version 2\n {2}version 1: 600\n/)
    const overridden = await runCli([...dryRun, '--url', server.baseUrl], { ...env, KEYWRAP_URL: 'http://127.0.0.1:9', KEYWRAP_TOKEN: token })
    assert.equal(overridden.code, 0, overridden.stderr)
    assert.equal(overridden.stdout, fromEnvironment.stdout)
  })

  test('rewraps every line in order, fields copied through, each to the same DEK under the primary version', async () => {
    const out = newOutput()
    const run = await cli(['--in', input, '--out', out, '--chunk', '64'], { KEYWRAP_TOKEN: token })
    assert.equal(run.code, 0, run.stderr)
    const lines = await readOutput(out)
    assert.deepEqual(
      lines.map((line) => line.id),
      generated.map((g) => g.id),
    )
    for (const line of lines) {
      assert.deepEqual(Object.keys(line), ['id', 'wrappedKey', 'context', 'owner', 'rewrapped'])
      assert.equal(line.rewrapped, true)
      assert.match(line.wrappedKey, /^kw1\.2\./)
      assert.equal(line.owner, 'billing')
    }
    await assertSameDeks(lines)
    assert.match(run.stderr, new RegExp(`${KEYS} lines in .* \\(${KEYS} rewrapped, 0 already current, 0 failed; 0 retries\\); ${KEYS} of ${KEYS} lines done`))

    // The output as input again: nothing left to change.
    const again = newOutput()
    const second = await cli(['--in', out, '--out', again, '--token', token])
    assert.equal(second.code, 0, second.stderr)
    const unchanged = await readOutput(again)
    assert.deepEqual(
      unchanged.map((line) => [line.wrappedKey, line.rewrapped]),
      lines.map((line) => [line.wrappedKey, false]),
    )
  })

  test('killed twice and resumed: every line once, in order, each unwrapping to its DEK', async () => {
    const out = newOutput()
    kms.setFaults({ latencyMs: 40 })
    try {
      const args = ['--in', input, '--out', out, '--chunk', '25', '--concurrency', '2', '--token', token]
      for (const killAt of [100, 300]) {
        const child = spawn(
          process.execPath,
          [join(REPO_ROOT, 'bin/keywrap.js'), 'rewrap', '--url', server.baseUrl, '--alias', 'campaign', ...args, ...(killAt === 100 ? [] : ['--resume'])],
          {
            cwd: REPO_ROOT,
            env: { ...process.env, ...env, NODE_TEST_CONTEXT: '' },
            stdio: 'ignore',
          },
        )
        const exited = once(child, 'exit')
        while (child.exitCode === null && (await linesIn(out)) < killAt) await sleep(10)
        child.kill('SIGKILL')
        await exited
        const written = await linesIn(out)
        assert.ok(written >= killAt && written < KEYS, `killed with ${written} lines written`)
      }
      const finished = await cli([...args, '--resume'])
      assert.equal(finished.code, 0, finished.stderr)
      assert.match(finished.stderr, /resumed after line \d+; 600 of 600 lines done/)
      const lines = await readOutput(out)
      assert.deepEqual(
        lines.map((line) => line.id),
        generated.map((g) => g.id),
      )
      await assertSameDeks(lines)
    } finally {
      kms.clearFaults()
    }
  })

  test('a request answered 503 with Retry-After (by a proxy in front of the server) waits and succeeds', async () => {
    const proxy = await failingProxy(server.baseUrl, 1)
    try {
      const out = newOutput()
      const started = performance.now()
      const run = await runCli(['rewrap', '--url', proxy.url, '--alias', 'campaign', '--in', input, '--out', out, '--token', token, '--chunk', '1000'], env)
      const elapsed = performance.now() - started
      assert.equal(run.code, 0, run.stderr)
      assert.deepEqual(proxy.answers, [503, 200])
      assert.ok(elapsed >= 1000, `the retry came after ${elapsed} ms`)
      assert.match(run.stderr, /0 failed; 1 retries/)
      const lines = await readOutput(out)
      assert.deepEqual(
        lines.map((line) => line.id),
        generated.map((g) => g.id),
      )
      await assertSameDeks(lines)
    } finally {
      await proxy.close()
    }
  })

  test('the key lookup answered 503 with Retry-After is tried again after it; one that fails for good ends the run', async () => {
    const proxy = await failingProxy(server.baseUrl, 2, { path: '/v1/keys/campaign' })
    try {
      const run = await runCli(['rewrap', '--url', proxy.url, '--alias', 'campaign', '--in', input, '--token', token, '--dry-run'], env)
      assert.equal(run.code, 0, run.stderr)
      assert.deepEqual(proxy.answers, [503, 503, 200])
      const gaps = proxy.arrivals.slice(1).map((at, index) => at - proxy.arrivals[index]!)
      assert.ok(
        gaps.every((gap) => gap >= 950),
        `each retry came a Retry-After (1 s) after the failure: ${gaps.map(Math.round).join(', ')} ms`,
      )
      assert.equal(run.stderr.match(/reading key "campaign": .*; trying again in 1\.0 s/g)?.length, 2, run.stderr)
      assert.match(run.stdout, new RegExp(`would rewrap ${KEYS}, already current 0`))
    } finally {
      await proxy.close()
    }
    const refused = await runCli(['rewrap', '--url', server.baseUrl, '--alias', 'campaign', '--in', input, '--token', 'not-a-token', '--dry-run'], env)
    assert.equal(refused.code, 1)
    assert.doesNotMatch(refused.stderr, /trying again/)
    assert.match(refused.stderr, /cannot read key "campaign"/)
  })

  test('a failure without Retry-After (a 502 from a proxy) is tried again after a backoff, not at once', async () => {
    const proxy = await failingProxy(server.baseUrl, 2, { path: '/v1/keys/campaign', status: 502, retryAfter: null })
    try {
      const run = await runCli(['rewrap', '--url', proxy.url, '--alias', 'campaign', '--in', input, '--token', token, '--dry-run'], env)
      assert.equal(run.code, 0, run.stderr)
      assert.deepEqual(proxy.answers, [502, 502, 200])
      // Backoff with jitter: attempt 1 waits 0.25–0.5 s, attempt 2 0.5–1 s.
      const waits = [...run.stderr.matchAll(/trying again in (\d+\.\d) s/g)].map((match) => Number(match[1]))
      assert.equal(waits.length, 2, run.stderr)
      assert.ok(waits[0]! >= 0.2 && waits[0]! <= 0.5 && waits[1]! >= 0.5 && waits[1]! <= 1, run.stderr)
      const gaps = proxy.arrivals.slice(1).map((at, index) => at - proxy.arrivals[index]!)
      assert.ok(gaps[0]! >= 200 && gaps[1]! >= 450, `${gaps.map(Math.round).join(', ')} ms between attempts`)
    } finally {
      await proxy.close()
    }
  })

  test('items the service refuses as overloaded (its provider calls and queue full) are sent again, and succeed', async () => {
    // 32 provider calls at once and none queued: of a request's 64 items at once, 32 are refused.
    const narrow = await startServer({ ...env, KEYWRAP_PROVIDER_MAX_CONCURRENT: '32', KEYWRAP_PROVIDER_MAX_QUEUED: '0' })
    try {
      const file = join(home, 'first-64.jsonl')
      await writeFile(file, (await readFile(input, 'utf8')).split('\n').slice(0, 64).join('\n') + '\n')
      const out = newOutput()
      const run = await runCli(
        ['rewrap', '--url', narrow.baseUrl, '--alias', 'campaign', '--in', file, '--out', out, '--token', token, '--attempts', '20'],
        env,
      )
      assert.equal(run.code, 0, run.stderr)
      assert.match(run.stderr, /64 rewrapped, 0 already current, 0 failed; [1-9]\d* retries/)
      const lines = await readOutput(out)
      assert.deepEqual(
        lines.map((line) => line.id),
        generated.slice(0, 64).map((g) => g.id),
      )
      await assertSameDeks(lines)
    } finally {
      await narrow.stop()
    }
  })

  test('items that fail for good are written with their problem, and the run exits 1 with a summary', async () => {
    const file = join(home, 'bad.jsonl')
    const [first, second, third] = generated
    const tampered = `${first!.wrappedKey.slice(0, -4)}AAAA`
    await writeFile(
      file,
      [
        JSON.stringify({ id: 0, wrappedKey: tampered, context: first!.context }),
        JSON.stringify({ id: 1, wrappedKey: second!.wrappedKey, context: { record: 'someone else' } }),
        '{"id": 2, "wrapped": "no key"}',
        '',
        JSON.stringify(third!.wrappedKey),
        JSON.stringify({ id: 3, wrappedKey: third!.wrappedKey, context: third!.context }),
      ].join('\n') + '\n',
    )
    const out = newOutput()
    const run = await cli(['--in', file, '--out', out, '--token', token])
    assert.equal(run.code, 1)
    const lines = (await readFile(out, 'utf8')).split('\n')
    assert.equal(lines.length, 7)
    const [tamperedLine, wrongContext, noKey, blank, stringLine, good] = lines.map((line) => (line === '' ? line : JSON.parse(line)))
    assert.deepEqual(tamperedLine.error.code, 'cannot_unwrap')
    assert.equal(tamperedLine.wrappedKey, tampered)
    assert.equal(tamperedLine.rewrapped, false)
    assert.equal(wrongContext.error.code, 'cannot_unwrap')
    assert.deepEqual(noKey, {
      input: '{"id": 2, "wrapped": "no key"}',
      rewrapped: false,
      error: { code: 'invalid_line', detail: 'the object has no string "wrappedKey"' },
    })
    assert.equal(blank, '')
    assert.equal(stringLine.error.code, 'cannot_unwrap', 'no context: the AAD differs')
    assert.equal(good.rewrapped, true)
    assert.match(run.stderr, /6 lines in .* \(1 rewrapped, 0 already current, 4 failed; 0 retries\); 6 of 6 lines done/)
  })

  test('without a terminal, progress is a plain line every --progress-every seconds', async () => {
    kms.setFaults({ latencyMs: 60 })
    try {
      const run = await cli(['--in', input, '--out', newOutput(), '--token', token, '--chunk', '20', '--concurrency', '1', '--progress-every', '0.3'])
      assert.equal(run.code, 0, run.stderr)
      const progress = run.stderr.split('\n').filter((line) => line.startsWith('rewrap: '))
      assert.ok(progress.length >= 2, run.stderr)
      for (const line of progress) assert.match(line, /^rewrap: [\d,]+\/600 \d+\.\d% [\d,]+ keys\/s ETA (\d+:\d\d|\?) failed 0$/)
      assert.ok(!run.stderr.includes('\r') && !run.stderr.includes('\u001b'), 'no terminal control characters')
    } finally {
      kms.clearFaults()
    }
  })

  test('refuses to overwrite an output without --resume, and argument errors exit 64', async () => {
    const out = newOutput()
    await writeFile(out, '{"id":0}\n')
    const refused = await cli(['--in', input, '--out', out, '--token', token])
    assert.equal(refused.code, 64)
    assert.match(refused.stderr, /exists: add --resume/)
    assert.equal(await readFile(out, 'utf8'), '{"id":0}\n')
    assert.equal((await cli(['--in', input, '--token', token, '--chunk', '1001'])).code, 64)
    assert.equal((await cli(['--in', input])).code, 64, 'no token')
    assert.equal((await cli(['--in', input, '--token', token, '--resume'])).code, 64, '--resume without --out')
    assert.equal((await cli(['--in', join(home, 'missing.jsonl'), '--token', token])).code, 66)
    const denied = await cli(['--in', input, '--token', 'not-a-token', '--out', newOutput()])
    assert.equal(denied.code, 1)
    assert.match(denied.stderr, /unauthenticated/)
  })
})

/** Complete lines in `file` (0 when it does not exist yet). */
async function linesIn(file: string): Promise<number> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').length - 1
}

interface FailingProxyOptions {
  /** The requests to fail: those whose path ends in this. */
  readonly path?: string
  readonly status?: number
  /** The Retry-After header of a failure; null for none. */
  readonly retryAfter?: string | null
}

/**
 * A loopback proxy to `target` that fails the first `failures` requests whose path ends in `path`
 * (503 with Retry-After: 1 unless told otherwise), and records each such request's status and when it came.
 */
async function failingProxy(
  target: string,
  failures: number,
  { path = ':batchRewrap', status = 503, retryAfter = '1' }: FailingProxyOptions = {},
): Promise<{ url: string; answers: number[]; arrivals: number[]; close(): Promise<void> }> {
  const answers: number[] = []
  const arrivals: number[] = []
  let failed = 0
  const server: Server = createServer(async (request, response) => {
    const chunks: Buffer[] = []
    for await (const chunk of request) chunks.push(chunk as Buffer)
    if (request.url?.endsWith(path)) arrivals.push(performance.now())
    if (request.url?.endsWith(path) && failed < failures) {
      failed++
      answers.push(status)
      response.writeHead(status, { 'content-type': 'application/problem+json', ...(retryAfter !== null && { 'retry-after': retryAfter }) })
      response.end(JSON.stringify({ type: 'urn:keywrap:problem:provider_unavailable', title: 'unavailable', status, code: 'provider_unavailable' }))
      return
    }
    const upstream = await fetch(`${target}${request.url}`, {
      method: request.method,
      headers: { authorization: request.headers.authorization ?? '', 'content-type': request.headers['content-type'] ?? 'application/json' },
      ...(chunks.length > 0 && { body: Buffer.concat(chunks) }),
    })
    if (request.url?.endsWith(path)) answers.push(upstream.status)
    response.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' })
    response.end(Buffer.from(await upstream.arrayBuffer()))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    answers,
    arrivals,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
