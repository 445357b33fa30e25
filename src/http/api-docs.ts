/**
 * The contract served as Swagger UI at /docs, from the swagger-ui-dist package: the page, its
 * initializer (a file, not an inline script, so that a CSP without 'unsafe-inline' allows it), the
 * contract as JSON (what the UI shows) and as YAML, and a fixed list of the package's files. Nothing
 * is read at start: each file is read on its first request and kept in memory, so registering this
 * costs a start a few routes (@fastify/swagger and @fastify/swagger-ui, which this replaces, cost it
 * ~70 ms of module loading and route setup).
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Contract } from './openapi-contract.js'

const JS = 'application/javascript; charset=utf-8'
const HTML = 'text/html; charset=utf-8'

/** The swagger-ui-dist files served under /docs/static/, with their content types: these and no others. */
const DIST_FILES: Readonly<Record<string, string>> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'index.css': 'text/css; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
  'swagger-ui-bundle.js': JS,
  'swagger-ui-standalone-preset.js': JS,
  'oauth2-redirect.html': HTML,
  'oauth2-redirect.js': JS,
}

// swagger-ui-dist's index.html, with the initializer the one file of ours. Relative URLs: the page is
// served at /docs/ (GET /docs redirects there), wherever a proxy mounts the service.
const INDEX_HTML = `<!-- HTML for static distribution bundle build -->
<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Swagger UI</title>
    <link rel="stylesheet" type="text/css" href="./static/swagger-ui.css" />
    <link rel="stylesheet" type="text/css" href="./static/index.css" />
    <link rel="icon" type="image/png" href="./static/favicon-32x32.png" sizes="32x32" />
    <link rel="icon" type="image/png" href="./static/favicon-16x16.png" sizes="16x16" />
  </head>

  <body>
    <div id="swagger-ui"></div>
    <script src="./static/swagger-ui-bundle.js" charset="UTF-8"> </script>
    <script src="./static/swagger-ui-standalone-preset.js" charset="UTF-8"> </script>
    <script src="./static/swagger-initializer.js" charset="UTF-8"> </script>
  </body>
</html>
`

// The configuration @fastify/swagger-ui gave the UI: the contract and the OAuth2 redirect page at
// URLs relative to the page (the spec's server `/` then makes Try it out call this same origin), and
// no validator (Swagger UI's default sends the spec's URL to validator.swagger.io for a badge).
const SWAGGER_INITIALIZER = `window.onload = function () {
  function resolveUrl(url) {
    let currentHref = window.location.href.split('#', 1)[0]
    currentHref = currentHref.endsWith('/') ? currentHref : currentHref + '/'
    const anchor = document.createElement('a')
    anchor.href = currentHref + url
    return anchor.href
  }

  window.ui = SwaggerUIBundle({
    url: resolveUrl('./json'),
    oauth2RedirectUrl: resolveUrl('./static/oauth2-redirect.html'),
    dom_id: '#swagger-ui',
    deepLinking: true,
    tryItOutEnabled: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: 'StandaloneLayout',
    validatorUrl: null,
  })
}
`

let distDirectory: string | undefined
const distFiles = new Map<string, Promise<Buffer>>()

/** One of DIST_FILES, read from the installed package on its first request and kept. */
function distFile(name: string): Promise<Buffer> {
  let file = distFiles.get(name)
  if (!file) {
    distDirectory ??= dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))
    file = readFile(join(distDirectory, name))
    // A failed read (answered as a 500) is tried again by the next request.
    file.catch(() => distFiles.delete(name))
    distFiles.set(name, file)
  }
  return file
}

function apiDocs(app: FastifyInstance, { contract }: { readonly contract: Contract }, done: () => void): void {
  let documentJson: string | undefined

  app.get('/docs', (_request, reply) => reply.redirect('./docs/'))
  app.get('/docs/', (_request, reply) => reply.type(HTML).send(INDEX_HTML))
  app.get('/docs/json', (_request, reply) => reply.type('application/json; charset=utf-8').send((documentJson ??= JSON.stringify(contract.document))))
  app.get('/docs/yaml', (_request, reply) => reply.type('application/yaml; charset=utf-8').send(contract.text))
  app.get('/docs/static/swagger-initializer.js', (_request, reply) => reply.type(JS).send(SWAGGER_INITIALIZER))
  app.get<{ Params: { file: string } }>('/docs/static/:file', async (request, reply) => {
    const { file } = request.params
    const type = Object.hasOwn(DIST_FILES, file) ? DIST_FILES[file] : undefined
    if (type === undefined) return reply.callNotFound()
    return reply.type(type).send(await distFile(file))
  })
  done()
}

export default fp(apiDocs, { name: 'api-docs' })
