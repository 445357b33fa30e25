/**
 * The simplest thing that does a rewrap campaign's provider work, to set beside keywrap's: the Cloud
 * KMS client alone, in a process of its own as keywrap is, against the same stand-in, with the same
 * limit (PROVIDER_MAX_CONCURRENT calls at once, each worker a Decrypt then an Encrypt, as keywrap does
 * a rewrap). No HTTP, no CLI, no cache, no audit: what this machine allows the client and the stand-in.
 *
 *   node --import tsx bench/kms-client-rewrap.ts KMS_ADDRESS KEY_NAME ITEMS SLOTS
 *
 * Prints `ready` once it has wrapped a DEK for each worker, waits for a line on stdin, rewraps ITEMS
 * and prints the seconds it took.
 */
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { checksumOf, verifiedEncryptResponse, verifiedPlaintext } from '../src/providers/gcp-kms/integrity.js'
import { createKmsClient } from '../src/providers/gcp-kms/kms-client.js'

const [address, name, itemsArg, slotsArg] = process.argv.slice(2)
const items = Number(itemsArg)
const slots = Number(slotsArg)
const client = createKmsClient({ emulatorHost: address!, projectId: 'bench' })
const aad = Buffer.from('bench')
// The options keywrap's provider gives each attempt: one attempt, its own deadline.
const options = { retry: null, timeout: 2000 }

async function encrypt(plaintext: Buffer): Promise<Buffer> {
  const request = { name, plaintext, additionalAuthenticatedData: aad, plaintextCrc32c: checksumOf(plaintext), additionalAuthenticatedDataCrc32c: checksumOf(aad) }
  const [response] = await client.encrypt(request, options)
  return verifiedEncryptResponse(response).ciphertext
}

async function decrypt(ciphertext: Buffer): Promise<Buffer> {
  const request = { name, ciphertext, ciphertextCrc32c: checksumOf(ciphertext), additionalAuthenticatedData: aad, additionalAuthenticatedDataCrc32c: checksumOf(aad) }
  const [response] = await client.decrypt(request, options)
  return verifiedPlaintext(response)
}

const wrapped = await Promise.all(Array.from({ length: slots }, () => encrypt(randomBytes(32))))
process.stdout.write('ready\n')
await once(process.stdin, 'data')
process.stdin.destroy()
const started = performance.now()
let next = 0
await Promise.all(
  wrapped.map(async (ciphertext) => {
    while (next++ < items) ciphertext = await encrypt(await decrypt(ciphertext))
  }),
)
process.stdout.write(`${(performance.now() - started) / 1000}\n`)
await client.close()
process.exit(0)
