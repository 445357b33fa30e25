/**
 * A JWKS endpoint on loopback for authenticator tests: keys can be rotated, the endpoint switched
 * down (503 or a dropped connection) or slowed, and every fetch is counted. Also an "attacker"
 * listener that records any request made to it, to show that a token's jku or x5u is never followed.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'

export type SigningAlgorithm = 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA'

export interface SigningKey {
  readonly kid: string
  readonly alg: SigningAlgorithm
  readonly privateKey: CryptoKey
  readonly publicKey: CryptoKey
  /** The public JWK as a JWKS publishes it (kid, alg, use: sig). */
  readonly jwk: JWK
}

export async function generateSigningKey(alg: SigningAlgorithm, kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' && { crv: 'Ed25519' }) })
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { kid, alg, privateKey, publicKey, jwk }
}

export type Availability = 'up' | 'unavailable' | 'dropping'

export interface JwksServer {
  /** http://127.0.0.1:PORT/certs */
  readonly url: string
  /** Requests received at the JWKS path, whether answered or not. */
  readonly fetches: number
  /** 'unavailable' answers 503; 'dropping' closes the connection without an answer. */
  availability: Availability
  /** Milliseconds to wait before answering. */
  delayMs: number
  /** When set, the endpoint answers 302 to this URL instead of the key set. */
  redirectTo: string | undefined
  setKeys(keys: readonly (SigningKey | JWK)[]): void
  /** Replaces the body with anything at all (not a key set, a private key, a huge body). */
  setBody(body: string): void
  close(): Promise<void>
}

export async function startJwksServer(keys: readonly (SigningKey | JWK)[] = []): Promise<JwksServer> {
  let body = keySet(keys)
  let fetches = 0
  const state = { availability: 'up' as Availability, delayMs: 0, redirectTo: undefined as string | undefined }
  const server = createServer((request, response) => {
    if (request.url !== '/certs') {
      response.writeHead(404).end()
      return
    }
    fetches++
    setTimeout(() => {
      if (state.availability === 'dropping') request.socket.destroy()
      else if (state.availability === 'unavailable') response.writeHead(503).end('down')
      else if (state.redirectTo) response.writeHead(302, { location: state.redirectTo }).end()
      else response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=21600' }).end(body)
    }, state.delayMs)
  })
  const url = `${await listen(server)}/certs`
  return {
    url,
    get fetches() {
      return fetches
    },
    get availability() {
      return state.availability
    },
    set availability(value: Availability) {
      state.availability = value
    },
    get delayMs() {
      return state.delayMs
    },
    set delayMs(value: number) {
      state.delayMs = value
    },
    get redirectTo() {
      return state.redirectTo
    },
    set redirectTo(value: string | undefined) {
      state.redirectTo = value
    },
    setKeys(next) {
      body = keySet(next)
    },
    setBody(next) {
      body = next
    },
    close: () => closeServer(server),
  }
}

export interface AttackerListener {
  readonly url: string
  /** Every request received: method, URL and headers. */
  readonly requests: readonly { method: string; url: string; headers: IncomingMessage['headers'] }[]
  close(): Promise<void>
}

/** A server a hostile token points at (jku, x5u). It answers a key set of its own, should anyone ask. */
export async function startAttackerListener(attackerKeys: readonly (SigningKey | JWK)[] = []): Promise<AttackerListener> {
  const requests: { method: string; url: string; headers: IncomingMessage['headers'] }[] = []
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers })
    response.writeHead(200, { 'content-type': 'application/json' }).end(keySet(attackerKeys))
  })
  const url = await listen(server)
  return { url, requests, close: () => closeServer(server) }
}

function keySet(keys: readonly (SigningKey | JWK)[]): string {
  return JSON.stringify({ keys: keys.map((key) => ('jwk' in key && 'privateKey' in key ? key.jwk : key)) })
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}
