/**
 * A loopback HTTP proxy in front of a real server that answers the next requests as told (a status
 * with its headers and problem body, or no answer at all), then forwards the rest unchanged.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

export interface ScriptedAnswer {
  status?: number
  headers?: Record<string, string>
  body?: unknown
  /** Never answer (until the client gives up). */
  hang?: boolean
}

export class FaultProxy {
  readonly #target: string
  readonly #script: ScriptedAnswer[] = []
  readonly #hanging = new Set<ServerResponse>()
  readonly #server = createServer((request, response) => void this.#handle(request, response))
  /** Every request seen: method, path and body. */
  readonly requests: { method: string; path: string; body: string; authorization: string | undefined }[] = []
  url = ''

  constructor(target: string) {
    this.#target = target
  }

  async start(): Promise<this> {
    this.#server.listen(0, '127.0.0.1')
    await once(this.#server, 'listening')
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`
    return this
  }

  /** The next requests get these answers, in order; then requests are forwarded again. */
  answerNext(...answers: ScriptedAnswer[]): void {
    this.#script.push(...answers)
  }

  reset(): void {
    this.#script.length = 0
    this.requests.length = 0
  }

  async close(): Promise<void> {
    for (const response of this.#hanging) response.destroy()
    this.#server.closeAllConnections()
    this.#server.close()
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of request) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks)
    this.requests.push({ method: request.method!, path: request.url!, body: body.toString(), authorization: request.headers.authorization })
    const answer = this.#script.shift()
    if (answer?.hang) {
      this.#hanging.add(response)
      return
    }
    if (answer) {
      response.writeHead(answer.status ?? 503, { 'content-type': 'application/problem+json', ...answer.headers })
      response.end(answer.body === undefined ? '' : JSON.stringify(answer.body))
      return
    }
    const headers = Object.fromEntries(Object.entries(request.headers).filter(([name]) => name !== 'host' && name !== 'content-length')) as Record<
      string,
      string
    >
    const forwarded = await fetch(`${this.#target}${request.url}`, { method: request.method, headers, body: body.length > 0 ? body : undefined })
    response.writeHead(
      forwarded.status,
      Object.fromEntries([...forwarded.headers].filter(([name]) => name !== 'content-length' && name !== 'transfer-encoding' && name !== 'content-encoding')),
    )
    response.end(Buffer.from(await forwarded.arrayBuffer()))
  }
}
