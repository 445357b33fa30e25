// The floor for the client section's stream figures, run by `node bench/stream-floor.js MODE` (plain
// JavaScript: a TypeScript loader would add its own memory): standard input to standard output in
// 64 KiB reads into one reused buffer, `copy` as they are, or `aes-gcm` each sealed under AES-256-GCM
// with its output freed once written, as encryptFrom does. No modules, no HTTP client, no envelope.
import { createCipheriv, createSecretKey, randomBytes } from 'node:crypto'
import { read, write } from 'node:fs'
import { promisify } from 'node:util'

const SEGMENT_BYTES = 65_536
const readInto = promisify(read)
const writeOut = promisify(write)
const mode = process.argv[2]
if (mode !== 'copy' && mode !== 'aes-gcm') throw new Error('usage: node bench/stream-floor.js copy|aes-gcm')
const key = createSecretKey(randomBytes(32))
const buffer = Buffer.allocUnsafeSlow(SEGMENT_BYTES)

async function writeAll(bytes) {
  for (let written = 0; written < bytes.length;) written += (await writeOut(1, bytes, written, bytes.length - written, null)).bytesWritten
}

for (;;) {
  const { bytesRead } = await readInto(0, buffer, 0, SEGMENT_BYTES, null)
  if (bytesRead === 0) break
  if (mode === 'copy') {
    await writeAll(buffer.subarray(0, bytesRead))
    continue
  }
  const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12))
  const ciphertext = cipher.update(buffer.subarray(0, bytesRead))
  cipher.final()
  await writeAll(ciphertext)
  await writeAll(cipher.getAuthTag())
  ciphertext.buffer.transfer(0)
}
