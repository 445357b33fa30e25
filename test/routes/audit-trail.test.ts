/**
 * The audit trail as an operator gets it: the file sink the configuration names, exactly one entry per
 * key access, no secret in it, `keywrap audit verify` on intact and damaged trails, and fail-closed.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../support/processes.js'
import { startTestApp, type TestApp } from '../support/test-app.js'

let t: TestApp
let trail: string
before(async () => {
  trail = join(await mkdtemp(join(tmpdir(), 'keywrap-trail-')), 'audit.jsonl')
  t = await startTestApp({
    configuredAudit: true,
    env: { KEYWRAP_AUDIT_SINK: `file:${trail}` },
    configFile: {
      policy: {
        grants: [
          { principals: ['dev'], keys: ['*'], operations: ['*'] },
          { principals: ['reader'], keys: ['*'], operations: ['keys.read'] },
        ],
      },
    },
  })
})
after(() => t.close())

/** The key accesses of the trail (its signed checkpoints left out). */
async function entries(): Promise<any[]> {
  return (await readFile(trail, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.operation !== 'audit.checkpoint')
}

test('N key accesses give exactly N entries, denied and failed ones and batch items included', async () => {
  const secrets: string[] = []
  const reader = await t.token('reader')
  const headers = { 'x-cloud-trace-context': '0123456789abcdef0123456789abcdef/17;o=1' }
  const generated = await t.call('generateDataKey', { body: { context: { app: 'a' } }, headers })
  secrets.push(generated.json.plaintext, generated.json.wrappedKey, reader)
  await t.call('unwrap', { body: { wrappedKey: generated.json.wrappedKey, context: { app: 'a' } } })
  await t.call('unwrap', { body: { wrappedKey: generated.json.wrappedKey } })
  await t.call('unwrap', { token: reader, body: { wrappedKey: generated.json.wrappedKey } })
  await t.call('batchUnwrap', {
    body: { items: [{ wrappedKey: generated.json.wrappedKey, context: { app: 'a' } }, { wrappedKey: 'x' }, { wrappedKey: generated.json.wrappedKey }] },
  })
  await Promise.all(Array.from({ length: 20 }, () => t.call('generateDataKey', { body: {} })))
  await t.call('listKeys')

  const lines = await entries()
  assert.equal(lines.length, 1 + 3 + 3 + 20)
  assert.deepEqual(
    lines.slice(0, 4).map((e) => [e.operation, e.outcome, e.severity]),
    [
      ['generateDataKey', 'allowed', 'NOTICE'],
      ['unwrap', 'allowed', 'NOTICE'],
      ['unwrap', 'failed', 'ERROR'],
      ['unwrap', 'denied', 'WARNING'],
    ],
  )
  const first = lines[0]
  assert.equal(first['logging.googleapis.com/trace'] ?? first.trace, 'projects/keywrap-local/traces/0123456789abcdef0123456789abcdef')
  assert.deepEqual(first['logging.googleapis.com/labels'] ?? first.labels, { audit: 'true' })
  // One DEK's accesses correlate by fingerprint, and the fingerprint reveals nothing.
  assert.match(first.wrappedKeyFingerprint, /^[A-Za-z0-9_-]{22}$/)
  assert.equal(lines[1].wrappedKeyFingerprint, first.wrappedKeyFingerprint)
  assert.equal(lines[3].wrappedKeyFingerprint, first.wrappedKeyFingerprint)
  const text = await readFile(trail, 'utf8')
  const dek = Buffer.from(generated.json.plaintext, 'base64')
  for (const secret of [...secrets, dek.toString('hex'), dek.toString('base64url')]) assert.ok(!text.includes(secret), 'a secret reached the audit trail')

  const intact = await runCli(['audit', 'verify', trail], {})
  assert.equal(intact.code, 0, intact.stdout + intact.stderr)
})

test('keywrap audit verify refuses a trail with a deleted or an edited entry', async () => {
  const lines = (await readFile(trail, 'utf8')).trim().split('\n')
  const directory = await mkdtemp(join(tmpdir(), 'keywrap-trail-'))
  const cut = join(directory, 'cut.jsonl')
  await writeFile(cut, `${lines.filter((_, index) => index !== 2).join('\n')}\n`)
  const edited = join(directory, 'edited.jsonl')
  await writeFile(edited, `${lines.map((line, index) => (index === 1 ? line.replace('"outcome":"allowed"', '"outcome":"denied"') : line)).join('\n')}\n`)
  for (const file of [cut, edited]) {
    const result = await runCli(['audit', 'verify', file], {})
    assert.notEqual(result.code, 0, `${file} verified`)
    assert.match(result.stdout + result.stderr, /gap|missing|hash|edit/i)
  }
})

test('an unwritable audit sink: 503 audit_unavailable and no key material', async () => {
  const broken = await startTestApp({ configuredAudit: true, env: { KEYWRAP_AUDIT_SINK: 'file:/dev/full' } })
  try {
    const generated = await broken.call('generateDataKey', { body: {} })
    assert.equal(generated.statusCode, 503)
    assert.equal(generated.json.code, 'audit_unavailable')
    assert.ok(!('plaintext' in generated.json) && !('wrappedKey' in generated.json))
  } finally {
    await broken.close()
  }
})
