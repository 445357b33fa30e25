/**
 * Grant conditions in the running server: a token minted with `keywrap token --claim`, a tenant
 * confined to its context, a reason in the audit trail on stdout; a malformed condition refuses start.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli, runNode, startServer, type RunningServer } from './support/processes.js'

const grants = [
  { principals: ['admin'], keys: ['*'], operations: ['*'] },
  { principals: ['tenant-svc'], keys: ['default'], operations: ['generateDataKey', 'unwrap'], context: { tenant: { claim: 'tenant' } }, requireReason: true },
  { principals: ['ops'], keys: ['default'], operations: ['rewrap', 'keys.read'], requireReason: true },
]

describe('grant conditions in the server process', () => {
  let server: RunningServer
  let env: Record<string, string>
  before(async () => {
    const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
    await writeFile(join(home, 'config.json'), JSON.stringify({ policy: { grants } }))
    env = { KEYWRAP_HOME: home, KEYWRAP_CONFIG: join(home, 'config.json') }
    server = await startServer(env)
  })
  after(() => server?.stop())

  test('a token with a tenant claim: its own tenant with a reason, recorded; not another tenant', async () => {
    const minted = await runCli(['token', '--sub', 'tenant-svc', '--claim', 'tenant=acme'], env)
    assert.equal(minted.code, 0, minted.stderr)
    const token = minted.stdout.trim()
    const call = (context: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${server.baseUrl}/v1/keys/default:generateDataKey`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ context }),
      }).then(async (response) => ({ status: response.status, json: (await response.json()) as any }))

    const reason = { 'x-keywrap-reason': 'TICKET-9 reissue' }
    assert.equal((await call({ tenant: 'acme' }, reason)).status, 200)
    const other = await call({ tenant: 'globex' }, reason)
    assert.deepEqual([other.status, other.json.code], [403, 'context_not_allowed'])
    const unexplained = await call({ tenant: 'acme' })
    assert.deepEqual([unexplained.status, unexplained.json.code], [403, 'reason_required'])

    const audit = server
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"callerReason":"TICKET-9'))
      .map((line) => JSON.parse(line))
    assert.deepEqual(
      audit.map((entry) => [entry.outcome, entry.errorCode, entry.callerReason]),
      [
        ['allowed', undefined, 'TICKET-9 reissue'],
        ['denied', 'context_not_allowed', 'TICKET-9 reissue'],
      ],
    )
  })

  test('keywrap rewrap and encrypt send --reason; a grant with requireReason refuses them without one', async () => {
    const work = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
    const admin = (await runCli(['token', '--sub', 'admin'], env)).stdout.trim()
    const ops = (await runCli(['token', '--sub', 'ops'], env)).stdout.trim()
    const generated = await fetch(`${server.baseUrl}/v1/keys/default:generateDataKey`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: '{}',
    }).then((response) => response.json() as Promise<{ wrappedKey: string }>)
    await writeFile(join(work, 'keys.jsonl'), `${JSON.stringify(generated.wrappedKey)}\n`)
    const rewrap = (more: string[]) =>
      runCli(['rewrap', '--url', server.baseUrl, '--alias', 'default', '--in', join(work, 'keys.jsonl'), '--token', ops, ...more], env)

    const unexplained = await rewrap(['--dry-run'])
    assert.equal(unexplained.code, 1)
    assert.match(unexplained.stderr, /reason_required/)
    assert.equal((await rewrap(['--dry-run', '--reason', ''])).code, 64)
    const explained = await rewrap(['--out', join(work, 'out.jsonl'), '--reason', 'CHG-12 rotation'])
    assert.equal(explained.code, 0, explained.stderr)

    await writeFile(join(work, 'plain.txt'), 'hello')
    const encrypted = await runCli(
      [
        'encrypt',
        '--alias',
        'default',
        '--in',
        join(work, 'plain.txt'),
        '--out',
        join(work, 'plain.kw'),
        '--url',
        server.baseUrl,
        '--token',
        admin,
        '--reason',
        'export for audit',
      ],
      env,
    )
    assert.equal(encrypted.code, 0, encrypted.stderr)

    const recorded = () =>
      server
        .stdout()
        .split('\n')
        .filter((line) => /"callerReason":"(CHG-12 rotation|export for audit)"/.test(line))
        .map((line) => JSON.parse(line))
    const deadline = Date.now() + 5000
    while (recorded().length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.deepEqual(
      recorded().map((entry) => [entry.operation, entry.principal, entry.callerReason]),
      [
        ['rewrap', 'ops', 'CHG-12 rotation'],
        ['generateDataKey', 'admin', 'export for audit'],
      ],
    )
  })

  test('keywrap token --claim refuses what is not NAME=VALUE and the claims the issuer sets', async () => {
    for (const claim of ['tenant', 'sub=root', 'exp=1']) {
      const refused = await runCli(['token', '--claim', claim], env)
      assert.equal(refused.code, 64, claim)
      assert.match(refused.stderr, /--claim/)
    }
  })
})

test('a malformed grant condition: exit 78 naming it, nothing listening', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
  const bad = [{ principals: ['a'], keys: ['*'], operations: ['unwrap'], context: { tenant: { claim: '' }, env: '' }, requireReason: 'yes' }]
  await writeFile(join(home, 'config.json'), JSON.stringify({ policy: { grants: bad } }))
  const result = await runNode(['--import', 'tsx', 'src/server.ts'], { KEYWRAP_HOME: home, KEYWRAP_CONFIG: join(home, 'config.json') })
  assert.equal(result.code, 78)
  assert.match(result.stderr, /policy\.grants\[0\]\.context\.tenant must be a non-empty pattern or \{"claim": "NAME"\}/)
  assert.match(result.stderr, /policy\.grants\[0\]\.context\.env is an empty pattern/)
  assert.match(result.stderr, /policy\.grants\[0\]\.requireReason must be true or false/)
  assert.deepEqual(await readdir(home), ['config.json'], 'nothing was created before refusing')
})
