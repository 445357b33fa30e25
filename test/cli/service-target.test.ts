/**
 * Where the service-calling commands (encrypt, decrypt, rewrap, keys retire) send their calls: one
 * rule for --url, --token, --reason and KEYWRAP_URL / KEYWRAP_TOKEN, the same usage errors; and a
 * service that takes the connection but never answers, which must end a rewrap (retried like a lost
 * connection, then written as failed) instead of hanging it.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { UsageError } from '../../src/cli/command.js'
import { serviceTarget } from '../../src/cli/service-target.js'
import { clientEnvironment } from '../../src/config/client-environment.js'
import { runCli } from '../support/processes.js'

describe('serviceTarget', () => {
  test('--url, else KEYWRAP_URL, else http://localhost:8080; --token, else KEYWRAP_TOKEN; --reason', () => {
    assert.deepEqual(serviceTarget({}, clientEnvironment({ KEYWRAP_TOKEN: 'env-token' })), {
      url: 'http://localhost:8080',
      token: 'env-token',
      reason: undefined,
    })
    assert.deepEqual(serviceTarget({}, clientEnvironment({ KEYWRAP_URL: ' https://kw.example/ ', KEYWRAP_TOKEN: ' t ' })), {
      url: 'https://kw.example/',
      token: 't',
      reason: undefined,
    })
    assert.deepEqual(
      serviceTarget(
        { url: 'http://127.0.0.1:9', token: 'option-token', reason: 'CHG-42' },
        clientEnvironment({ KEYWRAP_URL: 'https://kw.example', KEYWRAP_TOKEN: 'env-token' }),
      ),
      { url: 'http://127.0.0.1:9', token: 'option-token', reason: 'CHG-42' },
    )
    assert.equal(serviceTarget({ token: 't' }, clientEnvironment({ KEYWRAP_URL: '  ' })).url, 'http://localhost:8080', 'a blank KEYWRAP_URL is none')
  })

  test('usage errors: no token, a URL that is not http(s) (naming where it came from), a bad --reason', () => {
    const refuses = (values: Parameters<typeof serviceTarget>[0], env: NodeJS.ProcessEnv, message: RegExp) =>
      assert.throws(
        () => serviceTarget(values, clientEnvironment(env)),
        (error: unknown) => error instanceof UsageError && message.test(error.message),
      )
    refuses({}, {}, /^no token: set KEYWRAP_TOKEN or give --token$/)
    refuses({ url: 'http://127.0.0.1:9' }, { KEYWRAP_TOKEN: ' ' }, /^no token/)
    refuses({ url: 'ftp://kw.example', token: 't' }, {}, /^--url must be an http\(s\) URL, not "ftp:\/\/kw\.example"$/)
    refuses({ url: 'localhost:8080', token: 't' }, {}, /^--url must be an http\(s\) URL/)
    refuses({ token: 't' }, { KEYWRAP_URL: 'not a url' }, /^KEYWRAP_URL must be an http\(s\) URL, not "not a url"$/)
    refuses({ token: 't', reason: '' }, {}, /^--reason must be 1 to 256 printable ASCII characters$/)
    refuses({ token: 't', reason: 'tab\there' }, {}, /^--reason must be/)
  })
})

describe('the CLI commands that call the service', () => {
  test('each refuses a --url or KEYWRAP_URL that is not an http(s) URL with exit 64 and its usage', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-cli-target-'))
    const input = join(home, 'in.jsonl')
    await writeFile(input, '"kw1.1.AAAA"\n')
    const commands = [
      ['encrypt', '--alias', 'default', '--in', input, '--out', join(home, 'out.kw')],
      ['decrypt', '--in', input, '--out', join(home, 'out')],
      ['rewrap', '--alias', 'default', '--in', input, '--dry-run'],
      ['keys', 'retire', 'default', '1'],
    ]
    for (const args of commands) {
      const option = await runCli([...args, '--url', 'ftp://kw.example'], { KEYWRAP_HOME: home, KEYWRAP_TOKEN: 't', KEYWRAP_URL: '' })
      assert.equal(option.code, 64, `${args.join(' ')}: ${option.stderr}`)
      assert.match(option.stderr, /--url must be an http\(s\) URL, not "ftp:\/\/kw\.example"/)
      assert.match(option.stderr, /usage: keywrap /i)
      const environment = await runCli(args, { KEYWRAP_HOME: home, KEYWRAP_TOKEN: 't', KEYWRAP_URL: 'kw.example' })
      assert.equal(environment.code, 64, `${args.join(' ')}: ${environment.stderr}`)
      assert.match(environment.stderr, /KEYWRAP_URL must be an http\(s\) URL, not "kw\.example"/)
    }
  })
})

describe('keywrap rewrap against a service that takes the connection and never answers', () => {
  const KEY = {
    alias: 'campaign',
    provider: 'gcp-kms',
    uri: 'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/campaign',
    primaryVersion: 2,
    versions: [],
  }

  /** A loopback server that answers GET /v1/keys/campaign (unless `silent`) and never answers anything else. */
  async function hangingService(silent: boolean) {
    const requests: string[] = []
    const server = createServer((request: IncomingMessage, response) => {
      requests.push(`${request.method} ${request.url}`)
      request.resume()
      if (!silent && request.method === 'GET' && request.url === '/v1/keys/campaign') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(KEY))
      }
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      requests,
      close: () => {
        server.closeAllConnections()
        return new Promise<void>((resolve) => server.close(() => resolve()))
      },
    }
  }

  test('each request times out after --timeout, is retried with backoff, and its lines are written as failed: exit 1', async () => {
    const service = await hangingService(false)
    try {
      const home = await mkdtemp(join(tmpdir(), 'keywrap-cli-hang-'))
      const input = join(home, 'in.jsonl')
      const out = join(home, 'out.jsonl')
      await writeFile(input, ['"kw1.1.AAAA"', '"kw1.1.BBBB"', '"kw1.1.CCCC"'].join('\n') + '\n')
      const started = performance.now()
      // --timeout 0.5 keeps the test short; the default is DEFAULT_TIMEOUT_SECONDS (30).
      const run = await runCli(['rewrap', '--alias', 'campaign', '--in', input, '--out', out, '--chunk', '2', '--attempts', '3', '--timeout', '0.5'], {
        KEYWRAP_URL: service.url,
        KEYWRAP_TOKEN: 't',
      })
      const elapsed = performance.now() - started
      assert.equal(run.code, 1, run.stderr)
      // Two chunks, each tried three times: 0.5 s each try, and a backoff between tries.
      assert.equal(service.requests.filter((request) => request === 'POST /v1/keys/campaign:batchRewrap').length, 6, service.requests.join('\n'))
      assert.ok(elapsed >= 1500, `done in ${elapsed} ms: no time limit waited for`)
      assert.ok(elapsed < 20_000, `done in ${elapsed} ms`)
      assert.match(run.stderr, /3 lines in .* \(0 rewrapped, 0 already current, 3 failed; 4 retries\); 3 of 3 lines done/)
      const lines = (await readFile(out, 'utf8'))
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line))
      assert.deepEqual(
        lines.map((line) => line.wrappedKey),
        ['kw1.1.AAAA', 'kw1.1.BBBB', 'kw1.1.CCCC'],
      )
      for (const line of lines) {
        assert.equal(line.rewrapped, false)
        assert.equal(line.error.code, 'timeout')
        assert.equal(line.error.detail, `${service.url}: no complete answer within 0.5 s`)
      }
    } finally {
      await service.close()
    }
  })

  test('a service that does not answer the key lookup: it is tried --attempts times with backoff, then the run ends, exit 1, saying so', async () => {
    const service = await hangingService(true)
    try {
      const home = await mkdtemp(join(tmpdir(), 'keywrap-cli-hang-'))
      const input = join(home, 'in.jsonl')
      await writeFile(input, '"kw1.1.AAAA"\n')
      const run = await runCli(['rewrap', '--url', service.url, '--alias', 'campaign', '--in', input, '--dry-run', '--timeout', '0.5', '--attempts', '2'], {
        KEYWRAP_TOKEN: 't',
      })
      assert.equal(run.code, 1, run.stderr)
      const timedOut = `timeout: ${service.url}: no complete answer within 0.5 s`
      const [retried, ended, ...rest] = run.stderr.split('\n')
      assert.match(retried!, new RegExp(`^keywrap rewrap: reading key "campaign": ${escapeRegExp(timedOut)}; trying again in 0\\.[2-5] s$`))
      assert.equal(ended, `keywrap rewrap: cannot read key "campaign" from ${service.url}: ${timedOut}`)
      assert.deepEqual(rest, [''])
      assert.deepEqual(service.requests, ['GET /v1/keys/campaign', 'GET /v1/keys/campaign'])
    } finally {
      await service.close()
    }
  })

  test('--timeout must be a positive number of seconds, at most an hour', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-cli-hang-'))
    const input = join(home, 'in.jsonl')
    await writeFile(input, '"kw1.1.AAAA"\n')
    for (const [value, message] of [
      ['0', /--timeout must be a positive number, not "0"/],
      ['soon', /--timeout must be a positive number, not "soon"/],
      ['3601', /--timeout must be at most 3600, not "3601"/],
    ] as const) {
      const run = await runCli(['rewrap', '--url', 'http://127.0.0.1:9', '--alias', 'campaign', '--in', input, '--dry-run', '--timeout', value], {
        KEYWRAP_TOKEN: 't',
      })
      assert.equal(run.code, 64, run.stderr)
      assert.match(run.stderr, message)
    }
  })
})

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
