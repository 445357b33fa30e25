/**
 * The metadata server's ID-token endpoint as Cloud Run answers it, on loopback (GCE_METADATA_HOST
 * points Google's libraries and @keywrap/client at it): requires `Metadata-Flavor: Google`, returns
 * the token it was given for the audience asked, and records each request.
 */
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

export class MetadataStandIn {
  readonly #server
  readonly requests: { path: string; audience: string | null; flavor: string | undefined; userAgent: string | undefined }[] = []
  host = ''

  constructor(token: () => string) {
    this.#server = createServer((request, response) => {
      const url = new URL(request.url!, 'http://metadata')
      const flavor = request.headers['metadata-flavor'] as string | undefined
      this.requests.push({ path: url.pathname, audience: url.searchParams.get('audience'), flavor, userAgent: request.headers['user-agent'] })
      const headers = { 'metadata-flavor': 'Google', 'content-type': 'text/plain' }
      if (flavor !== 'Google') {
        response.writeHead(403, headers).end('Missing Metadata-Flavor:Google header.')
      } else if (url.pathname === '/computeMetadata/v1/instance/service-accounts/default/identity' && url.searchParams.get('audience')) {
        response.writeHead(200, headers).end(token())
      } else if (url.pathname === '/computeMetadata/v1/project/project-id') {
        response.writeHead(200, headers).end('workload-project')
      } else if (url.pathname === '/computeMetadata/v1/instance' || url.pathname === '/') {
        response.writeHead(200, headers).end('')
      } else {
        response.writeHead(404, headers).end('Not Found')
      }
    })
  }

  async start(): Promise<this> {
    this.#server.listen(0, '127.0.0.1')
    await once(this.#server, 'listening')
    this.host = `127.0.0.1:${(this.#server.address() as AddressInfo).port}`
    return this
  }

  identityRequests() {
    return this.requests.filter((request) => request.path.endsWith('/identity'))
  }

  close(): void {
    this.#server.closeAllConnections()
    this.#server.close()
  }
}
