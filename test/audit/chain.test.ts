import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { canonicalJson } from '../../src/audit/canonical-json.js'
import { AuditChain, chainHash, GENESIS_HASH, hashedFields, toAuditRecord } from '../../src/audit/chain.js'
import fc from 'fast-check'
import { auditEntry } from './audit-fixtures.js'

/** Canonical JSON by its definition, without shortcuts: the reference for canonicalJson(). */
function referenceCanonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(referenceCanonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const members = Object.keys(value)
      .sort()
      .filter((name) => (value as Record<string, unknown>)[name] !== undefined)
      .map((name) => `${JSON.stringify(name)}:${referenceCanonicalJson((value as Record<string, unknown>)[name])}`)
    return `{${members.join(',')}}`
  }
  return JSON.stringify(value)
}

describe('canonical JSON', () => {
  test('sorts keys at every depth, drops undefined, adds no whitespace', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: 'x', c: [2, { f: true, e: null }] }, z: undefined }), '{"a":{"c":[2,{"e":null,"f":true}],"d":"x"},"b":1}')
  })

  test('is the same whatever order the keys were written in', () => {
    assert.equal(canonicalJson({ seq: 2, chain: 'c', context: { y: '1', x: '2' } }), canonicalJson({ context: { x: '2', y: '1' }, chain: 'c', seq: 2 }))
  })

  test('matches its definition for any JSON value, sorted or not, with keys that look like indices', () => {
    const key = fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.nat(20).map(String))
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.string({ unit: 'binary', maxLength: 8 }),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.boolean(),
        fc.constant(null),
        tie('array'),
        tie('object'),
      ),
      array: fc.array(tie('value'), { maxLength: 4 }),
      object: fc.dictionary(key, tie('value'), { maxKeys: 6 }),
    }))
    fc.assert(
      fc.property(json.value, (value) => assert.equal(canonicalJson(value), referenceCanonicalJson(value))),
      { numRuns: 500 },
    )
    // Sorted objects take the fast path; they must give the same text.
    fc.assert(
      fc.property(json.object, (value) => assert.equal(canonicalJson(JSON.parse(referenceCanonicalJson(value))), referenceCanonicalJson(value))),
      { numRuns: 300 },
    )
  })

  test('escapes strings as JSON does', () => {
    assert.equal(canonicalJson({ 'k"': 'line\nbreak é' }), '{"k\\"":"line\\nbreak é"}')
  })
})

describe('AuditChain', () => {
  test('numbers entries from 1 and links the first to the genesis hash', () => {
    const chain = new AuditChain('chain-a')
    const first = chain.seal({ alias: 'default' })
    assert.equal(first.seq, 1)
    assert.deepEqual(first.fields, { alias: 'default', chain: 'chain-a', seq: 1 })
    const expected = createHash('sha256').update(Buffer.from(GENESIS_HASH, 'hex')).update('{"alias":"default","chain":"chain-a","seq":1}').digest('hex')
    assert.equal(first.hash, expected)
  })

  test('each hash covers the previous one', () => {
    const chain = new AuditChain('chain-a')
    const first = chain.seal({ n: 1 })
    chain.accept(first)
    const second = chain.seal({ n: 2 })
    chain.accept(second)
    assert.equal(second.seq, 2)
    assert.equal(second.hash, chainHash(first.hash, second.fields))
    assert.notEqual(second.hash, chainHash(GENESIS_HASH, second.fields))
    assert.equal(chain.length, 2)
  })

  test('seal does not move the chain; accept refuses a link that does not follow', () => {
    const chain = new AuditChain()
    const sealed = chain.seal({ n: 1 })
    assert.equal(chain.seal({ n: 1 }).hash, sealed.hash)
    chain.accept(sealed)
    assert.throws(() => chain.accept(sealed), /does not follow/)
  })

  test('chain ids are random per instance', () => {
    const ids = new Set(Array.from({ length: 100 }, () => new AuditChain().id))
    assert.equal(ids.size, 100)
  })
})

describe('hashed fields', () => {
  test('a record is built in canonical order, so sealing it needs no sorting', () => {
    const entry = auditEntry({ context: { zone: 'b', app: 'a' }, batchIndex: 2, errorCode: 'forbidden' })
    const sealed = new AuditChain('c').seal(toAuditRecord(entry))
    assert.equal(sealed.fieldsJson, JSON.stringify(sealed.fields))
    assert.equal(sealed.fieldsJson, referenceCanonicalJson(sealed.fields))
    assert.deepEqual(Object.keys(sealed.fields), Object.keys(sealed.fields).sort())
  })

  test('links are the ones every trail written so far was verified with (known answers)', () => {
    const chain = new AuditChain('known-chain')
    const entry = auditEntry({
      time: '2026-01-02T03:04:05.678Z',
      issuer: 'https://issuer.example',
      alias: 'payments',
      keyVersion: 'local://payments/versions/3',
      context: { zone: 'é', app: 'a', '10': 'n' },
      wrappedKeyFingerprint: 'HgzbZOmKU9gOZ1QYyOS1eg',
      requestId: 'req-1',
      trace: undefined,
      spanId: undefined,
      remoteAddress: undefined,
      userAgent: undefined,
    })
    const first = chain.seal(toAuditRecord(entry))
    assert.equal(
      first.fieldsJson,
      '{"alias":"payments","cacheLevel":"l1","chain":"known-chain","context":{"10":"n","app":"a","zone":"é"},"issuer":"https://issuer.example","keyVersion":"local://payments/versions/3","latencyMs":1.25,"operation":"unwrap","outcome":"allowed","principal":"alice","requestId":"req-1","seq":1,"time":"2026-01-02T03:04:05.678Z","wrappedKeyFingerprint":"HgzbZOmKU9gOZ1QYyOS1eg"}',
    )
    assert.equal(first.hash, '3efb20477b3c2c8a73698849af86e820d5215c89e17197668d10da70b1fdeede')
    chain.accept(first)
    const second = chain.seal(toAuditRecord({ ...entry, outcome: 'denied', errorCode: 'forbidden', batchIndex: 2 }))
    assert.equal(second.hash, 'd874def49403ea8e34eccda88604d4850e91e6d4018790b1a46e16c356ba524a')
  })

  test('an entry whose context has a key named __proto__ seals it as a key', () => {
    const entry = auditEntry({ context: JSON.parse('{"__proto__":"x","app":"a"}') })
    const sealed = new AuditChain('c').seal(toAuditRecord(entry))
    assert.match(sealed.fieldsJson, /"context":\{"__proto__":"x","app":"a"\}/)
    assert.deepEqual(Object.keys((sealed.fields as { context: object }).context), ['__proto__', 'app'])
  })

  test('a record key named __proto__ stays a key when the chain link is added', () => {
    const sealed = new AuditChain('c').seal(JSON.parse('{"__proto__":1,"alias":"a"}'))
    assert.equal(sealed.fieldsJson, '{"__proto__":1,"alias":"a","chain":"c","seq":1}')
  })

  test('a context key named __proto__ is kept, hashed and written like any other', () => {
    const context = JSON.parse('{"__proto__":"x","app":"a"}') as Record<string, string>
    const sealed = new AuditChain('c').seal(toAuditRecord(auditEntry({ context })))
    assert.match(sealed.fieldsJson, /"context":\{"__proto__":"x","app":"a"\}/)
    assert.equal(sealed.fieldsJson, referenceCanonicalJson(sealed.fields))
  })

  test('a record is the entry without undefined fields', () => {
    const record = toAuditRecord(auditEntry({ errorCode: undefined, batchIndex: 3 }))
    assert.ok(!('errorCode' in record))
    assert.equal(record.batchIndex, 3)
  })

  test('leave out the hash, the summary and what log agents strip', () => {
    const payload = {
      alias: 'default',
      chain: 'c',
      seq: 1,
      hash: 'h',
      message: 'm',
      severity: 'NOTICE',
      logName: 'projects/p/logs/l',
      timestamp: { seconds: 1, nanos: 0 },
      'logging.googleapis.com/labels': { audit: 'true' },
      'logging.googleapis.com/operation': { id: 'r' },
    }
    assert.deepEqual(hashedFields(payload), { alias: 'default', chain: 'c', seq: 1 })
  })
})
