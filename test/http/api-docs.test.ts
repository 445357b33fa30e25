/** /docs beyond what the contract's test checks: only the listed swagger-ui-dist files are served, and /docs/yaml. */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { OPENAPI_PATH } from '../../src/http/openapi-contract.js'
import { startTestApp, type TestApp } from '../support/test-app.js'

/** A GET of `path` exactly as written, over a socket: no client normalises its `..` away. */
function rawGet(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('/docs', () => {
  let t: TestApp
  let port: number

  before(async () => {
    t = await startTestApp()
    await t.app.listen({ host: '127.0.0.1', port: 0 })
    port = (t.app.server.address() as AddressInfo).port
  })

  after(async () => {
    await t.close()
  })

  test('/docs/static/ serves only its listed files: anything else is the 404 problem of an unknown route', async () => {
    const unknown = await t.app.inject({ method: 'GET', url: '/nowhere' })
    assert.equal(unknown.statusCode, 404)
    for (const path of [
      '/docs/static/x',
      '/docs/static/package.json',
      '/docs/static/index.js',
      '/docs/static/swagger-ui-bundle.js.map',
      '/docs/static/__proto__',
      '/docs/static/constructor',
      '/docs/static/../package.json',
      '/docs/static/%2e%2e%2fpackage.json',
      '/docs/static/..%2f..%2fpackage.json',
      '/docs/static/..%2F..%2F..%2Fpackage.json',
    ]) {
      const response = await rawGet(port, path)
      assert.equal(response.status, 404, `${path}: ${response.body}`)
      assert.equal(response.type, unknown.headers['content-type'], path)
      assert.equal(JSON.parse(response.body).code, 'not_found', path)
    }
  })

  test('a listed file is served with its content type and the headers of every response', async () => {
    for (const [file, type] of [
      ['swagger-ui-bundle.js', /^application\/javascript/],
      ['swagger-ui.css', /^text\/css/],
      ['favicon-32x32.png', /^image\/png$/],
      ['swagger-initializer.js', /^application\/javascript/],
    ] as const) {
      for (let i = 0; i < 2; i++) {
        const response = await t.app.inject({ method: 'GET', url: `/docs/static/${file}` })
        assert.equal(response.statusCode, 200, file)
        assert.match(String(response.headers['content-type']), type, file)
        assert.ok(response.rawPayload.length > 0, file)
        assert.equal(response.headers['x-content-type-options'], 'nosniff', file)
        assert.ok(response.headers['x-request-id'], file)
      }
    }
  })

  test('GET /docs redirects to /docs/, whose page has no inline script', async () => {
    const redirect = await t.app.inject({ method: 'GET', url: '/docs' })
    assert.equal(redirect.statusCode, 302)
    assert.equal(new URL(String(redirect.headers.location), 'http://localhost/docs').pathname, '/docs/')
    const page = await t.app.inject({ method: 'GET', url: '/docs/' })
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8')
    const scripts = [...page.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)]
    assert.ok(scripts.length > 0)
    for (const [, attributes, content] of scripts) {
      assert.match(attributes!, /\bsrc="\.\/static\//)
      assert.equal(content!.trim(), '')
    }
  })

  test('GET /docs/yaml serves openapi.yaml as application/yaml', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/docs/yaml' })
    assert.equal(response.statusCode, 200)
    assert.equal(String(response.headers['content-type']).split(';')[0]!.trim(), 'application/yaml')
    assert.equal(response.body, readFileSync(OPENAPI_PATH, 'utf8'))
  })
})
