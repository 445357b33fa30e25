/**
 * The development token issuer: an Ed25519 key pair in KEYWRAP_HOME/dev-issuer.json, created on first
 * use, so that `npx keywrap token` and the server agree without any setup. Never for production.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose'
import { createFileOnce } from '../support/file-lock.js'
import { DEV_ISSUER } from '../config/config.js'

export interface DevIssuerKeys {
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicKey: CryptoKey
  /** The file the keys are kept in. */
  readonly path: string
  /** True when this call created the file (a new issuer that no running server trusts yet). */
  readonly created: boolean
}

interface StoredIssuer {
  kid: string
  privateJwk: JWK
}

export async function loadDevIssuer(home: string): Promise<DevIssuerKeys> {
  const path = join(home, 'dev-issuer.json')
  const existing = await readStored(path)
  const stored = existing ?? (await createStored(home, path))
  const { d: _private, ...publicJwk } = stored.privateJwk
  return {
    path,
    // Two processes racing to create it both read the winner's key; each says it created one, harmlessly.
    created: existing === undefined,
    kid: stored.kid,
    privateKey: (await importJWK(stored.privateJwk, 'EdDSA')) as CryptoKey,
    publicKey: (await importJWK(publicJwk, 'EdDSA')) as CryptoKey,
  }
}

/** Claims the issuer sets itself; `claims` cannot override them. */
export const REGISTERED_CLAIMS = ['iss', 'sub', 'aud', 'iat', 'exp', 'nbf', 'jti'] as const

export async function mintDevToken(
  keys: DevIssuerKeys,
  options: { subject: string; audience: string; ttlSeconds: number; claims?: Readonly<Record<string, string>> },
): Promise<string> {
  const claims = options.claims ?? {}
  const registered = REGISTERED_CLAIMS.find((name) => Object.hasOwn(claims, name))
  if (registered) throw new Error(`the claim "${registered}" is the issuer's to set`)
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: keys.kid })
    .setIssuer(DEV_ISSUER)
    .setSubject(options.subject)
    .setAudience(options.audience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + options.ttlSeconds)
    .setJti(randomBytes(12).toString('base64url'))
    .sign(keys.privateKey)
}

async function readStored(path: string): Promise<StoredIssuer | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as StoredIssuer
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new Error(`The development issuer ${path} cannot be read: ${(error as Error).message}`)
  }
}

/** When two processes race, the first key wins and both use it (createFileOnce). */
async function createStored(home: string, path: string): Promise<StoredIssuer> {
  await mkdir(home, { recursive: true, mode: 0o700 })
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const stored: StoredIssuer = { kid: `dev-${randomBytes(6).toString('hex')}`, privateJwk: await exportJWK(privateKey) }
  await createFileOnce(path, `${JSON.stringify(stored, null, 2)}\n`)
  return (await readStored(path))!
}
