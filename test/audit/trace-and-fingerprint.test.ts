import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { fingerprintWrappedKey, WrappedKeyFingerprints } from '../../src/audit/fingerprint.js'
import { parseFingerprintKey } from '../../src/config/fingerprint-key.js'
import { parseTraceContext } from '../../src/audit/trace-context.js'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'

describe('parseTraceContext', () => {
  test('reads X-Cloud-Trace-Context and turns its decimal span id into 16 hex digits', () => {
    assert.deepEqual(parseTraceContext({ 'x-cloud-trace-context': `${TRACE_ID}/1;o=1` }, 'my-project'), {
      trace: `projects/my-project/traces/${TRACE_ID}`,
      spanId: '0000000000000001',
    })
    assert.deepEqual(parseTraceContext({ 'x-cloud-trace-context': `${TRACE_ID.toUpperCase()}/18446744073709551615;o=0` }, 'p'), {
      trace: `projects/p/traces/${TRACE_ID}`,
      spanId: 'ffffffffffffffff',
    })
  })

  test('keeps the trace when the Cloud header has no usable span', () => {
    assert.deepEqual(parseTraceContext({ 'x-cloud-trace-context': TRACE_ID }, 'p'), { trace: `projects/p/traces/${TRACE_ID}` })
    assert.deepEqual(parseTraceContext({ 'x-cloud-trace-context': `${TRACE_ID}/18446744073709551616` }, 'p'), { trace: `projects/p/traces/${TRACE_ID}` })
  })

  test('reads W3C traceparent', () => {
    assert.deepEqual(parseTraceContext({ traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` }, 'p'), {
      trace: `projects/p/traces/${TRACE_ID}`,
      spanId: '00f067aa0ba902b7',
    })
    // A later version may append fields.
    assert.equal(parseTraceContext({ traceparent: `01-${TRACE_ID}-00f067aa0ba902b7-01-extra` }, 'p')?.spanId, '00f067aa0ba902b7')
  })

  test('prefers traceparent, and falls back to the Cloud header when traceparent is invalid', () => {
    const cloud = `${'a'.repeat(32)}/2;o=1`
    assert.equal(
      parseTraceContext({ traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`, 'x-cloud-trace-context': cloud }, 'p')?.trace,
      `projects/p/traces/${TRACE_ID}`,
    )
    assert.deepEqual(parseTraceContext({ traceparent: 'garbage', 'x-cloud-trace-context': cloud }, 'p'), {
      trace: `projects/p/traces/${'a'.repeat(32)}`,
      spanId: '0000000000000002',
    })
  })

  test('refuses what the formats forbid', () => {
    for (const traceparent of [
      `ff-${TRACE_ID}-00f067aa0ba902b7-01`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID}-00f067aa0ba902b7-01-extra`,
      `00-${TRACE_ID.slice(1)}-00f067aa0ba902b7-01`,
    ]) {
      assert.equal(parseTraceContext({ traceparent }, 'p'), undefined, traceparent)
    }
    for (const cloud of [`${'0'.repeat(32)}/1;o=1`, `${TRACE_ID.slice(2)}/1`, `${TRACE_ID}/abc`, '']) {
      assert.equal(parseTraceContext({ 'x-cloud-trace-context': cloud }, 'p'), undefined, cloud)
    }
    assert.equal(parseTraceContext({}, 'p'), undefined)
  })

  test('takes the first of repeated headers', () => {
    assert.equal(parseTraceContext({ traceparent: [`00-${TRACE_ID}-00f067aa0ba902b7-01`, 'other'] }, 'p')?.spanId, '00f067aa0ba902b7')
  })
})

describe('fingerprintWrappedKey', () => {
  const key = randomBytes(32)
  const wrappedKey = `kw1.1.${randomBytes(60).toString('base64url')}`

  test('is stable for one key and 16 bytes of base64url', () => {
    const fingerprint = fingerprintWrappedKey(key, wrappedKey)
    assert.equal(fingerprint, fingerprintWrappedKey(Buffer.from(key), wrappedKey))
    assert.match(fingerprint, /^[A-Za-z0-9_-]{22}$/)
    assert.equal(Buffer.from(fingerprint, 'base64url').length, 16)
  })

  test('is the first 16 bytes of HMAC-SHA256 (a known answer, from openssl dgst -sha256 -mac HMAC)', () => {
    assert.equal(fingerprintWrappedKey(Buffer.alloc(32, 1), 'kw1.1.AA'), 'HgzbZOmKU9gOZ1QYyOS1eg')
    assert.equal(new WrappedKeyFingerprints(Buffer.alloc(32, 1)).ofNew('kw1.1.AA'), 'HgzbZOmKU9gOZ1QYyOS1eg')
  })

  test('differs across fingerprint keys and across wrapped keys', () => {
    const fingerprint = fingerprintWrappedKey(key, wrappedKey)
    assert.notEqual(fingerprintWrappedKey(randomBytes(32), wrappedKey), fingerprint)
    assert.notEqual(fingerprintWrappedKey(key, `${wrappedKey}A`), fingerprint)
  })

  test('remembered answers are the computed ones, for keys seen before, evicted, or too long to keep', () => {
    const fingerprints = new WrappedKeyFingerprints(key, { remembered: 2 })
    const keys = [wrappedKey, `${wrappedKey}B`, `${wrappedKey}C`, `kw1.1.${'A'.repeat(300)}`]
    for (let round = 0; round < 3; round++) for (const each of keys) assert.equal(fingerprints.of(each), fingerprintWrappedKey(key, each))
    for (const each of keys) assert.equal(fingerprints.ofNew(each), fingerprintWrappedKey(key, each))
    assert.throws(() => new WrappedKeyFingerprints(randomBytes(16)), RangeError)
  })

  test('reveals nothing of the wrapped key', () => {
    const fingerprint = fingerprintWrappedKey(key, wrappedKey)
    const ciphertext = wrappedKey.split('.')[2]!
    for (let start = 0; start + 8 <= fingerprint.length; start++) assert.ok(!ciphertext.includes(fingerprint.slice(start, start + 8)))
    // Guessing the key does not reproduce it.
    assert.notEqual(fingerprintWrappedKey(Buffer.alloc(32), wrappedKey), fingerprint)
  })

  test('refuses a short key', () => {
    assert.throws(() => fingerprintWrappedKey(randomBytes(16), wrappedKey), /at least 32 bytes/)
  })

  test('parseFingerprintKey reads base64 and base64url of 32 bytes or more', () => {
    const raw = randomBytes(32)
    assert.deepEqual(parseFingerprintKey(raw.toString('base64')), raw)
    assert.deepEqual(parseFingerprintKey(raw.toString('base64url')), raw)
    assert.match((parseFingerprintKey(randomBytes(16).toString('base64')) as { error: string }).error, /at least 32 bytes/)
    assert.match((parseFingerprintKey('not base64!') as { error: string }).error, /base64/)
  })
})
