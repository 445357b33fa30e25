/** Every way a body or a request can be wrong gets problem+json that says what and where. */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { once } from 'node:events'
import { startTestApp, type TestApp } from '../support/test-app.js'

let t: TestApp
before(async () => {
  t = await startTestApp({ env: { KEYWRAP_BODY_LIMIT_BYTES: '4096' } })
})
after(() => t.close())

async function detailOf(operationId: string, payload: string): Promise<string> {
  const response = await t.call(operationId, { payload, contentType: 'application/json' })
  assert.equal(response.statusCode, 400, response.body)
  assert.equal(response.headers['content-type'], 'application/problem+json')
  assert.equal(response.json.code, 'invalid_request')
  return response.json.detail as string
}

describe('JSON syntax errors', () => {
  const cases: [string, string][] = [
    ['{"wrappedKey": }', "Unexpected token '}' at line 1, column 16 (position 15)."],
    ['{"wrappedKey": "x",}', 'Expected double-quoted property name at line 1, column 20 (position 19).'],
    ['{\n  "wrappedKey": tru\n}', "Unexpected token '\\n' at line 2, column 20 (position 21)."],
    ['{"wrappedKey": "x"', "Expected ',' or '}' after property value at line 1, column 19 (position 18)."],
    ['{"wrappedKey": "x"} {}', 'Unexpected non-whitespace character after JSON at line 1, column 21 (position 20).'],
    ['nul', 'Unexpected end of the body at line 1, column 4 (position 3).'],
  ]
  for (const [payload, where] of cases) {
    test(`${JSON.stringify(payload)}: the error and where it is, not the body's text, nor __proto__`, async () => {
      const detail = await detailOf('unwrap', payload)
      assert.equal(detail, `The body is not valid JSON: ${where}`)
    })
  }

  test('an empty body says so', async () => {
    assert.equal(await detailOf('unwrap', ''), 'The body is empty; send a JSON object.')
  })
})

describe('the body rules apply to every shape of body', () => {
  test('null is refused like [] and 42: the body must be an object', async () => {
    for (const payload of ['null', '[]', '42', '"x"']) {
      const response = await t.call('generateDataKey', { payload, contentType: 'application/json' })
      assert.equal(response.statusCode, 400, `${payload}: ${response.body}`)
      assert.deepEqual(response.json.errors, [{ pointer: '/body', detail: 'must be object' }], payload)
    }
    assert.equal((await t.call('generateDataKey', { payload: '{}', contentType: 'application/json' })).statusCode, 200)
    assert.equal((await t.call('generateDataKey', {})).statusCode, 200, 'no body at all: every field is optional')
  })

  test('a member named twice is refused, at any depth, naming it and its object', async () => {
    assert.equal(
      await detailOf('generateDataKey', '{"context": {"tenant": "acme", "tenant": "evil"}}'),
      'The body names the member "tenant" twice in the object at /context.',
    )
    assert.equal(await detailOf('generateDataKey', '{"bytes": 32, "bytes": 16}'), 'The body names the member "bytes" twice in the object at /.')
    assert.equal(
      await detailOf('batchUnwrap', '{"items": [{"wrappedKey": "a"}, {"wrappedKey": "b", "context": {"a": "1", "b": "2", "a": "1"}}]}'),
      'The body names the member "a" twice in the object at /items/1/context.',
    )
    // Same names in different objects, and colons inside strings, are fine.
    const ok = await t.call('generateDataKey', { body: { context: { 'a:b': 'c:d', bytes: 'x' }, bytes: 32 } })
    assert.equal(ok.statusCode, 200, ok.body)
  })

  test('a member named __proto__ is refused with its own message', async () => {
    assert.equal(
      await detailOf('generateDataKey', '{"context": {"\\u005f_proto__": "x"}}'),
      'The body has a member named "__proto__" in the object at /context; keywrap refuses "__proto__", and "constructor" holding "prototype", anywhere in a body.',
    )
  })
})

test('413 states the limit', async () => {
  const response = await t.call('wrap', { payload: JSON.stringify({ plaintext: 'A'.repeat(5000) }), contentType: 'application/json' })
  assert.equal(response.statusCode, 413)
  assert.equal(response.headers['content-type'], 'application/problem+json')
  assert.equal(response.json.detail, 'The body is larger than this service accepts: at most 4096 bytes (KEYWRAP_BODY_LIMIT_BYTES).')
})

describe('requests refused by the HTTP parser', () => {
  let port: number
  before(async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 })
    port = (t.app.server.address() as { port: number }).port
  })

  /** Sends raw bytes and reads everything until the server closes the connection. */
  async function raw(request: string): Promise<{ status: number; headers: string; body: string }> {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    let received = ''
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()))
    socket.on('error', () => undefined)
    socket.write(request)
    await once(socket, 'close')
    const [head = '', body = ''] = received.split('\r\n\r\n')
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head.toLowerCase(), body }
  }

  test('a 20 KB header: 431 as problem+json', async () => {
    const response = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    assert.equal(response.status, 431)
    assert.match(response.headers, /\r\ncontent-type: application\/problem\+json\r\n/)
    const problem = JSON.parse(response.body) as Record<string, unknown>
    assert.deepEqual(problem, {
      type: 'urn:keywrap:problem:headers_too_large',
      title: 'The request header fields are too large.',
      status: 431,
      code: 'headers_too_large',
      detail: 'The request line and header fields together exceed the 16384 bytes this service reads.',
    })
  })

  test('bytes that are not HTTP: 400 as problem+json', async () => {
    const response = await raw('HELLO\r\n\r\n')
    assert.equal(response.status, 400)
    assert.equal((JSON.parse(response.body) as { code: string }).code, 'invalid_request')
  })
})
