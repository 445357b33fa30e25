/** `keywrap encrypt` and `keywrap decrypt` against npm start: files and pipes, refusals, and the progress bar. */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ProgressBar, progressLine } from '../../src/cli/progress-bar.js'
import { REPO_ROOT, runCli, startServer, type RunningServer } from '../support/processes.js'

/** `keywrap ARGS…` with `input` on its standard input; its exit code and standard output as bytes. */
async function runCliPiped(args: string[], env: Record<string, string>, input: Buffer): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('../../bin/keywrap.js', import.meta.url)), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
  })
  const stdout: Buffer[] = []
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  child.stdin.end(input)
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout: Buffer.concat(stdout), stderr }
}

describe('keywrap encrypt and decrypt against npm start', () => {
  let home: string
  let server: RunningServer
  let env: Record<string, string>

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'keywrap-cli-envelope-'))
    server = await startServer({ KEYWRAP_HOME: home })
    const token = (await runCli(['token'], { KEYWRAP_HOME: home })).stdout.trim()
    env = { KEYWRAP_HOME: home, KEYWRAP_TOKEN: token, KEYWRAP_URL: server.baseUrl }
  })
  after(() => server.stop())

  test('a file round trip with a context; a wrong context or an altered byte exits 1 and writes nothing', async () => {
    const plaintext = randomBytes(200_000)
    await writeFile(join(home, 'data.bin'), plaintext)
    const encrypted = await runCli(
      [
        'encrypt',
        '--alias',
        'default',
        '--in',
        join(home, 'data.bin'),
        '--out',
        join(home, 'data.bin.kw'),
        '--context',
        'app=billing',
        '--context',
        'file=data.bin',
      ],
      env,
    )
    assert.equal(encrypted.code, 0, encrypted.stderr)
    const envelope = await readFile(join(home, 'data.bin.kw'))
    assert.equal(envelope.subarray(0, 4).toString(), 'kwen')
    const decrypted = await runCli(
      ['decrypt', '--in', join(home, 'data.bin.kw'), '--out', join(home, 'back.bin'), '--context', 'file=data.bin', '--context', 'app=billing'],
      env,
    )
    assert.equal(decrypted.code, 0, decrypted.stderr)
    assert.deepEqual(await readFile(join(home, 'back.bin')), plaintext)

    const wrongContext = await runCli(['decrypt', '--in', join(home, 'data.bin.kw'), '--out', join(home, 'wrong.bin'), '--context', 'app=billing'], env)
    assert.equal(wrongContext.code, 1)
    assert.match(wrongContext.stderr, /^keywrap decrypt: cannot_decrypt/)
    envelope[envelope.length - 70_000]! ^= 1
    await writeFile(join(home, 'altered.kw'), envelope)
    const altered = await runCli(
      ['decrypt', '--in', join(home, 'altered.kw'), '--out', join(home, 'altered.bin'), '--context', 'app=billing', '--context', 'file=data.bin'],
      env,
    )
    assert.equal(altered.code, 1)
    assert.match(altered.stderr, /cannot_decrypt/)
    const files = await readdir(home)
    assert.ok(!files.includes('wrong.bin') && !files.includes('altered.bin'), files.join(' '))
    assert.ok(!files.some((name) => name.endsWith('.partial')), files.join(' '))
  })

  test('- is standard input and output', async () => {
    const plaintext = randomBytes(150_000)
    const encrypted = await runCliPiped(['encrypt', '--alias', 'default', '--in', '-', '--out', '-'], env, plaintext)
    assert.equal(encrypted.code, 0, encrypted.stderr)
    const decrypted = await runCliPiped(['decrypt', '--alias', 'default', '--in', '-', '--out', '-'], env, encrypted.stdout)
    assert.equal(decrypted.code, 0, decrypted.stderr)
    assert.deepEqual(decrypted.stdout, plaintext)
    const cut = await runCliPiped(['decrypt', '--in', '-', '--out', '-'], env, encrypted.stdout.subarray(0, encrypted.stdout.length - 10))
    assert.equal(cut.code, 1)
    assert.ok(cut.stdout.length < plaintext.length)
    assert.deepEqual(cut.stdout, plaintext.subarray(0, cut.stdout.length), 'only verified segments reach standard output')
  })

  test('a service that never answers: --timeout ends the call, exit 1, no output written', async () => {
    const silent = createServer(() => {}).listen(0, '127.0.0.1')
    await once(silent, 'listening')
    try {
      const input = join(home, 'to-time-out.txt')
      await writeFile(input, 'data')
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
      const started = performance.now()
      const result = await runCli(['encrypt', '--alias', 'default', '--in', input, '--out', join(home, 'timed-out.kw'), '--url', url, '--timeout', '0.5'], env)
      assert.equal(result.code, 1, result.stderr)
      assert.match(result.stderr, /timeout: POST \/v1\/keys\/default:generateDataKey: no complete answer within the timeout/)
      assert.ok(performance.now() - started < 10_000, 'ended by --timeout: the default 10 s would end it later than this')
      assert.deepEqual(
        (await readdir(home)).filter((name) => name.includes('timed-out')),
        [],
      )
      const bad = await runCli(['decrypt', '--in', input, '--out', '-', '--timeout', 'soon'], env)
      assert.equal(bad.code, 64)
      assert.match(bad.stderr, /--timeout must be a positive number, not "soon"/)
    } finally {
      silent.close()
    }
  })

  test('refusals: no token, a bad context, a missing input, another alias', async () => {
    const { KEYWRAP_TOKEN: _token, ...withoutToken } = env
    for (const [args, environment, code, message] of [
      [['encrypt', '--alias', 'default', '--in', '-', '--out', '-'], withoutToken, 64, /no token: set KEYWRAP_TOKEN or give --token/],
      [['encrypt', '--alias', 'default', '--in', '-', '--out', '-', '--context', 'novalue'], env, 64, /--context "novalue" is not KEY=VALUE/],
      [['encrypt', '--alias', 'Bad Alias', '--in', '-', '--out', '-'], env, 64, /alias "Bad Alias" is not a key alias/],
      [['decrypt', '--in', join(home, 'absent.kw'), '--out', '-'], env, 66, /cannot read .*absent\.kw \(ENOENT\)/],
      [['decrypt', '--in', '-'], env, 64, /--out is missing/],
    ] as const) {
      const result = await runCli([...args], environment)
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`)
      assert.match(result.stderr, message)
    }
    const sealed = await runCliPiped(['encrypt', '--alias', 'default', '--in', '-', '--out', '-'], env, Buffer.from('x'))
    const pinned = await runCliPiped(['decrypt', '--alias', 'other', '--in', '-', '--out', '-'], env, sealed.stdout)
    assert.equal(pinned.code, 1)
    assert.match(pinned.stderr, /another key alias/)
  })
})

describe('the progress bar', () => {
  test('draws the share done, at most every 100 ms, and ends its line', async () => {
    let clock = 0
    const drawn: string[] = []
    const bar = new ProgressBar('keywrap encrypt', 4 * 1048576, { columns: 80, write: (text: string) => drawn.push(text) }, () => clock)
    for (let mebibyte = 0; mebibyte < 4; mebibyte++) {
      bar.advance(1048576)
      clock += 60
    }
    bar.end()
    // Chunks come 60 ms apart: the second is not drawn, the end always is.
    assert.deepEqual(drawn, [
      '\rkeywrap encrypt [###########...............................]  25%  1.0/4.0 MiB',
      '\rkeywrap encrypt [################################..........]  75%  3.0/4.0 MiB',
      '\rkeywrap encrypt [##########################################] 100%  4.0/4.0 MiB',
      '\n',
    ])
    assert.ok(
      drawn.every((line) => line.length <= 81),
      'within 80 columns',
    )
    assert.match(progressLine('x', 5, 10, 30), /^x \[#####\.{5}\] {2}50%/)
  })
})
