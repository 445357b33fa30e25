/**
 * The grant matrix of generateDataKeyWithoutPlaintext: it allows :generateDataKey with
 * "includePlaintext": false and nothing more; a generateDataKey grant allows both; the wrapped-only
 * call is audited under its own operation whichever grant allowed it.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestApp, type TestApp } from '../support/test-app.js'

let t: TestApp
before(async () => {
  t = await startTestApp({
    configFile: {
      policy: {
        grants: [
          { principals: ['sealer'], keys: ['default'], operations: ['generateDataKeyWithoutPlaintext'] },
          { principals: ['producer'], keys: ['default'], operations: ['generateDataKey'] },
          { principals: ['consumer'], keys: ['default'], operations: ['unwrap'] },
          { principals: ['admin'], keys: ['*'], operations: ['*'] },
        ],
      },
    },
  })
})
after(() => t.close())

const WITHOUT = { includePlaintext: false }
const WITH = { includePlaintext: true }
const DEFAULT = {}

const matrix: [principal: string, body: object, allowed: boolean, audited: string][] = [
  ['sealer', WITHOUT, true, 'generateDataKeyWithoutPlaintext'],
  ['sealer', WITH, false, 'generateDataKey'],
  ['sealer', DEFAULT, false, 'generateDataKey'],
  ['producer', WITHOUT, true, 'generateDataKeyWithoutPlaintext'],
  ['producer', WITH, true, 'generateDataKey'],
  ['producer', DEFAULT, true, 'generateDataKey'],
  ['consumer', WITHOUT, false, 'generateDataKeyWithoutPlaintext'],
  ['consumer', WITH, false, 'generateDataKey'],
  ['admin', WITHOUT, true, 'generateDataKeyWithoutPlaintext'],
  ['admin', WITH, true, 'generateDataKey'],
]

for (const [principal, body, allowed, audited] of matrix) {
  test(`${principal} ${allowed ? 'may' : 'may not'} generateDataKey with ${JSON.stringify(body)}, audited as ${audited}`, async () => {
    const response = await t.call('generateDataKey', { token: await t.token(principal), body })
    assert.equal(response.statusCode, allowed ? 200 : 403, response.body)
    if (allowed) assert.equal('plaintext' in response.json, body !== WITHOUT)
    else assert.equal(response.json.code, 'forbidden')
    const entry = t.audit.entries.at(-1)!
    assert.deepEqual([entry.operation, entry.principal, entry.outcome], [audited, principal, allowed ? 'allowed' : 'denied'])
  })
}

test('generateDataKeyWithoutPlaintext allows nothing else: not wrap, unwrap, rewrap, batches, reading or purging the key', async () => {
  const token = await t.token('sealer')
  const generated = await t.call('generateDataKey', { token, body: WITHOUT })
  const wrappedKey = generated.json.wrappedKey
  const refused: [string, object | undefined][] = [
    ['wrap', { plaintext: Buffer.alloc(32).toString('base64') }],
    ['unwrap', { wrappedKey }],
    ['rewrap', { wrappedKey }],
    ['batchUnwrap', { items: [{ wrappedKey }] }],
    ['batchRewrap', { items: [{ wrappedKey }] }],
    ['getKey', undefined],
    ['purgeCache', undefined],
    ['getMetrics', undefined],
  ]
  for (const [operationId, body] of refused) {
    const response = await t.call(operationId, { token, ...(body && { body }) })
    const status = response.statusCode === 200 ? (response.json.results?.[0]?.error?.status ?? 200) : response.statusCode
    assert.equal(status, 403, `${operationId}: ${response.body}`)
  }
  // What it generated, a consumer unwraps.
  const unwrapped = await t.call('unwrap', { token: await t.token('consumer'), body: { wrappedKey } })
  assert.equal(unwrapped.statusCode, 200)
})
