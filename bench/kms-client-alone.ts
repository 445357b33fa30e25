/**
 * The simplest thing that does keywrap's provider work, to set beside keywrap's figures: the Cloud KMS
 * client alone, in a process of its own as keywrap is, against the same stand-in, calling as keywrap's
 * provider calls (CRC32C both ways, one attempt with its own deadline). No HTTP, no CLI, no gRPC
 * server, no cache, no audit: what this machine allows the client library and the stand-in.
 *
 *   node --import tsx bench/kms-client-alone.ts KMS_ADDRESS KEY_NAME rewrap ITEMS SLOTS
 *     SLOTS workers, each a Decrypt then an Encrypt per item (a rewrap campaign's provider calls under
 *     KEYWRAP_PROVIDER_MAX_CONCURRENT = SLOTS); prints the seconds ITEMS took
 *   node --import tsx bench/kms-client-alone.ts KMS_ADDRESS KEY_NAME encrypt CALLS CONCURRENCY
 *     CALLS Encrypts of a 32-byte seed, CONCURRENCY at once (the KMS plugin's Encrypt row); prints
 *     `p50 p99` in ms
 *
 * Prints `ready` once its channel is up, waits for a line on stdin, then warms up (a tenth of the
 * rewraps, or 64 Encrypts) and runs, and prints its result.
 */
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { checksumOf, verifiedEncryptResponse, verifiedPlaintext } from '../src/providers/gcp-kms/integrity.js'
import { createKmsClient } from '../src/providers/gcp-kms/kms-client.js'

const [address, name, mode, countArg, concurrencyArg] = process.argv.slice(2)
const count = Number(countArg)
const concurrency = Number(concurrencyArg)
const client = createKmsClient({ emulatorHost: address!, projectId: 'bench' })
const aad = Buffer.from('bench')
// The options keywrap's provider gives each attempt: one attempt, its own deadline.
const options = { retry: null, timeout: 2000 }

async function encrypt(plaintext: Buffer): Promise<Buffer> {
  const request = {
    name,
    plaintext,
    additionalAuthenticatedData: aad,
    plaintextCrc32c: checksumOf(plaintext),
    additionalAuthenticatedDataCrc32c: checksumOf(aad),
  }
  const [response] = await client.encrypt(request, options)
  return verifiedEncryptResponse(response).ciphertext
}

async function decrypt(ciphertext: Buffer): Promise<Buffer> {
  const request = {
    name,
    ciphertext,
    ciphertextCrc32c: checksumOf(ciphertext),
    additionalAuthenticatedData: aad,
    additionalAuthenticatedDataCrc32c: checksumOf(aad),
  }
  const [response] = await client.decrypt(request, options)
  return verifiedPlaintext(response)
}

async function rewraps(items: number): Promise<string> {
  let next = 0
  const started = performance.now()
  await Promise.all(
    wrapped.map(async (ciphertext) => {
      while (next++ < items) ciphertext = await encrypt(await decrypt(ciphertext))
    }),
  )
  return String((performance.now() - started) / 1000)
}

async function encrypts(calls: number): Promise<string> {
  const latencies: number[] = []
  let next = 0
  const seed = Buffer.alloc(32, 7)
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < calls) {
        const sent = performance.now()
        await encrypt(seed)
        latencies.push(performance.now() - sent)
      }
    }),
  )
  latencies.sort((a, b) => a - b)
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
  return `${at(0.5)} ${at(0.99)}`
}

if (mode !== 'rewrap' && mode !== 'encrypt') throw new Error(`mode ${mode}: rewrap or encrypt`)
const wrapped = await Promise.all(Array.from({ length: concurrency }, () => encrypt(randomBytes(32))))
process.stdout.write('ready\n')
await once(process.stdin, 'data')
process.stdin.destroy()
// Warm first (the channel, the JIT, the heap): a tenth of the rewraps (the campaign's keywrap has
// made all its keys before), or 64 Encrypts, as the plugin's Encrypt row warms the plugin.
if (mode === 'rewrap') await rewraps(Math.ceil(count / 10))
else await encrypts(64)
process.stdout.write(`${mode === 'rewrap' ? await rewraps(count) : await encrypts(count)}\n`)
await client.close()
process.exit(0)
