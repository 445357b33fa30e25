/**
 * Where the service-calling commands (encrypt, decrypt, rewrap, keys retire) send their calls: one
 * rule for --url, --token, --reason and KEYWRAP_URL / KEYWRAP_TOKEN, the same usage errors.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
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
