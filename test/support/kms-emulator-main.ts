// Runs the Cloud KMS stand-in on its own, for local development:
//   PORT=8085 KMS_KEYS=projects/p/locations/global/keyRings/r/cryptoKeys/k node --import tsx test/support/kms-emulator-main.ts
import { KmsStandIn } from './kms-stand-in.js'

const DEFAULT_PORT = 8085
const DEFAULT_KEYS = 'projects/local/locations/global/keyRings/keywrap/cryptoKeys/default'

function parsePort(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_PORT
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be an integer between 0 and 65535, got ${JSON.stringify(raw)}`)
  }
  return port
}

function parseKeyNames(raw: string | undefined): string[] {
  const names = (raw || DEFAULT_KEYS)
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '')
  return [...new Set(names)]
}

async function main(): Promise<void> {
  const standIn = new KmsStandIn()
  for (const name of parseKeyNames(process.env['KMS_KEYS'])) {
    standIn.createKey(name)
  }
  const server = await standIn.start({ port: parsePort(process.env['PORT']) })

  console.log(`Cloud KMS stand-in listening on ${server.address} (plaintext gRPC, no auth)`)
  for (const name of standIn.keyNames()) console.log(`  key: ${name}`)
  console.log(`KMS_EMULATOR_HOST=${server.address}`)

  const stop = (signal: NodeJS.Signals) => {
    console.log(`${signal} received, stopping Cloud KMS stand-in`)
    void server.close().then(() => process.exit(0))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
