import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { KeywrapError } from '../../src/errors.js'
import { parseJsonBody } from '../../src/http/json-body.js'

const refusal = (text: string) => {
  try {
    parseJsonBody(text)
  } catch (error) {
    assert.ok(error instanceof KeywrapError)
    return error.detail
  }
  return undefined
}

test('any JSON without a repeated member parses as JSON.parse parses it', () => {
  const safeJson = fc.jsonValue().filter((value) => !/"(__proto__|constructor)"/.test(JSON.stringify(value)))
  fc.assert(
    fc.property(safeJson, (value) => {
      const text = JSON.stringify(value)
      assert.deepEqual(parseJsonBody(text), JSON.parse(text))
    }),
    { numRuns: 500 },
  )
})

test('a member repeated anywhere is found, whatever the strings around it hold', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.string(), { minKeys: 1 }), fc.string(), (object, extra) => {
      const names = Object.keys(object)
      fc.pre(!names.includes('__proto__') && !names.includes('constructor'))
      const name = names[0]!
      const text = `{"note":${JSON.stringify(extra)},"inner":${JSON.stringify(object).slice(0, -1)},${JSON.stringify(name)}:"again"}}`
      assert.equal(refusal(text), `The body names the member ${JSON.stringify(name)} twice in the object at /inner.`)
    }),
    { numRuns: 500 },
  )
})

test('an escaped ":" cannot hide a repeated member from the count', () => {
  assert.equal(refusal('{"a":"x","a":"y","b":"\\u003a"}'), 'The body names the member "a" twice in the object at /.')
  assert.equal(refusal('{"a\\u003a":1,"a:":2}'), 'The body names the member "a:" twice in the object at /.')
  assert.equal(refusal('{"q\\"":1,"q\\"":2,"s":"\\\\"}'), 'The body names the member "q\\"" twice in the object at /.')
})
