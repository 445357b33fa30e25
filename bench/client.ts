/**
 * The client package's targets: `encrypt` of 1 MiB messages beside raw AES-256-GCM in the same
 * process (alternating slices), a stream through the compiled `keywrap encrypt | keywrap decrypt`
 * with the peak RSS of both processes, and the service calls 10,000 small encrypts and their
 * decrypts make with maxMessages 1000, counted in keywrap's audit trail.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createCipheriv, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { EnvelopeEncryptor, KeywrapClient } from '../client/src/index.js'
import { ROOT, type BenchProcess } from './processes.js'

const MiB = 1048576

export interface ClientBenchOptions {
  readonly quick: boolean
  readonly token: string
  /** The audit file the keywrap under test writes. */
  readonly auditFile: string
}

export async function clientFacts(keywrap: BenchProcess, options: ClientBenchOptions): Promise<Record<string, number | string>> {
  const client = new KeywrapClient({ baseUrl: keywrap.url, token: options.token })
  return {
    ...(await encryptBesideRawAesGcm(client, options.quick)),
    ...(await serviceCallsOf10kMessages(client, options.auditFile)),
    ...(await streamThroughCli(keywrap, options)),
  }
}

/**
 * MiB/s of encrypt() on 1 MiB messages (its DEK cached) and of bare AES-256-GCM on the same, in
 * alternating slices; beside them bare AES-256-GCM whose output is then copied behind a header, the
 * least any envelope with its header in front costs with node:crypto (Cipher.update allocates its
 * output, so the envelope is one more allocation and copy). Each side's CPU time too: on a shared
 * machine it moves less than the wall clock.
 */
async function encryptBesideRawAesGcm(client: KeywrapClient, quick: boolean): Promise<Record<string, number>> {
  const encryptor = new EnvelopeEncryptor({ client, alias: 'default' })
  const message = randomBytes(MiB)
  const key = randomBytes(32)
  const header = randomBytes(160)
  const raw = () => {
    const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12))
    cipher.update(message)
    cipher.final()
    return cipher.getAuthTag()
  }
  const rawIntoEnvelope = () => {
    const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12))
    const ciphertext = cipher.update(message)
    cipher.final()
    return Buffer.concat([header, ciphertext, cipher.getAuthTag()])
  }
  const sides = { raw, rawIntoEnvelope, client: () => encryptor.encrypt(message) }
  await encryptor.encrypt(message)
  const perSlice = quick ? 32 : 128
  const slices = quick ? 2 : 12
  const wallMs = { raw: 0, rawIntoEnvelope: 0, client: 0 }
  const cpuMs = { raw: 0, rawIntoEnvelope: 0, client: 0 }
  const orders = [
    ['raw', 'rawIntoEnvelope', 'client'],
    ['client', 'rawIntoEnvelope', 'raw'],
  ] as const
  for (let slice = 0; slice < slices; slice++) {
    // ABBA, so that no side always runs first on a machine whose speed drifts.
    for (const side of orders[slice % 2]!) {
      const started = performance.now()
      const cpuBefore = process.cpuUsage()
      for (let count = 0; count < perSlice; count++) await sides[side]()
      const cpu = process.cpuUsage(cpuBefore)
      wallMs[side] += performance.now() - started
      cpuMs[side] += (cpu.user + cpu.system) / 1000
    }
  }
  const mebibytes = perSlice * slices
  const rate = (ms: number) => Math.round(mebibytes / (ms / 1000))
  const percent = (side: number, of: number) => Math.round((of / side) * 100)
  return {
    clientEncrypt1MiBMiBps: rate(wallMs.client),
    rawAesGcm1MiBMiBps: rate(wallMs.raw),
    clientEncryptPercentOfRawAesGcm: percent(wallMs.client, wallMs.raw),
    rawAesGcmIntoEnvelopePercentOfRawAesGcm: percent(wallMs.rawIntoEnvelope, wallMs.raw),
    clientEncryptCpuPercentOfRawAesGcm: percent(cpuMs.client, cpuMs.raw),
    rawAesGcmIntoEnvelopeCpuPercentOfRawAesGcm: percent(cpuMs.rawIntoEnvelope, cpuMs.raw),
  }
}

/** 10,000 small messages, all at once, with maxMessages 1000; then all their decryptions by another encryptor, shuffled. */
async function serviceCallsOf10kMessages(client: KeywrapClient, auditFile: string): Promise<Record<string, number>> {
  const limits = { maxMessages: 1000 }
  const count = async (operation: string) =>
    (await readFile(auditFile, 'utf8').catch(() => '')).split('\n').filter((line) => line.includes(`"operation":"${operation}"`)).length
  const encryptor = new EnvelopeEncryptor({ client, alias: 'default', cache: limits })
  const generatedBefore = await count('generateDataKey')
  let started = performance.now()
  const envelopes = await Promise.all(Array.from({ length: 10_000 }, (_, index) => encryptor.encrypt(Buffer.from(`message ${index}`), { bench: 'client' })))
  const encryptMs = performance.now() - started
  const generated = (await count('generateDataKey')) - generatedBefore

  const decryptor = new EnvelopeEncryptor({ client, alias: 'default', cache: limits })
  const shuffled = envelopes.map((envelope) => ({ envelope, order: Math.random() })).sort((a, b) => a.order - b.order)
  const unwrappedBefore = await count('unwrap')
  started = performance.now()
  await Promise.all(shuffled.map(({ envelope }) => decryptor.decrypt(envelope, { bench: 'client' })))
  const decryptMs = performance.now() - started
  return {
    client10kEncryptServiceCalls: generated,
    client10kEncryptMs: Math.round(encryptMs),
    client10kDecryptUnwraps: (await count('unwrap')) - unwrappedBefore,
    client10kDecryptMs: Math.round(decryptMs),
  }
}

/**
 * Generated bytes into the compiled `keywrap encrypt --in - --out -`, its output into `keywrap decrypt`,
 * whose output is checked against what went in; the peak RSS (VmHWM) of both, read while they run,
 * and the largest anonymous and file-backed parts seen (the latter mostly Node's own executable).
 * Then the same bytes through bench/stream-floor.js, the floor: a bare Node process reading into one
 * buffer, copying or sealing each 64 KiB under AES-256-GCM.
 */
async function streamThroughCli(keywrap: BenchProcess, options: ClientBenchOptions): Promise<Record<string, number>> {
  const total = (options.quick ? 128 : 1024) * MiB
  const env = { ...process.env, KEYWRAP_URL: keywrap.url, KEYWRAP_TOKEN: options.token }
  const cli = (args: string[], stdin: 'pipe' | NodeJS.ReadableStream) =>
    spawn(process.execPath, ['dist/src/cli/main.js', ...args], { cwd: ROOT, env, stdio: [stdin, 'pipe', 'inherit'] as any })
  const encrypt = cli(['encrypt', '--alias', 'default', '--in', '-', '--out', '-', '--context', 'bench=stream'], 'pipe')
  // The envelope goes from one process to the other through a pipe of their own, not through this one.
  const decrypt = cli(['decrypt', '--in', '-', '--out', '-', '--context', 'bench=stream'], encrypt.stdout!)
  const peaks = { encrypt: new MemoryPeaks(encrypt), decrypt: new MemoryPeaks(decrypt) }

  const pattern = randomBytes(MiB)
  const started = performance.now()
  const checking = (async () => {
    let received = 0
    for await (const chunk of decrypt.stdout! as AsyncIterable<Buffer>) {
      for (let offset = 0; offset < chunk.length;) {
        const at = (received + offset) % MiB
        const length = Math.min(chunk.length - offset, MiB - at)
        if (!chunk.subarray(offset, offset + length).equals(pattern.subarray(at, at + length)))
          throw new Error(`decrypted bytes differ at ${received + offset}`)
        offset += length
      }
      received += chunk.length
    }
    return received
  })()
  await send(encrypt, pattern, total)
  const [received] = await Promise.all([checking, exited(encrypt), exited(decrypt)])
  const seconds = (performance.now() - started) / 1000
  peaks.encrypt.stop()
  peaks.decrypt.stop()
  if (received !== total) throw new Error(`${received} bytes came out of ${total}`)
  const floors: Record<string, number> = {}
  for (const mode of ['copy', 'aes-gcm'] as const) {
    const floor = spawn(process.execPath, ['bench/stream-floor.js', mode], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] })
    const floorPeaks = new MemoryPeaks(floor)
    const draining = (async () => {
      for await (const _chunk of floor.stdout) void _chunk
    })()
    await send(floor, pattern, total)
    await Promise.all([draining, exited(floor)])
    floorPeaks.stop()
    floors[mode === 'copy' ? 'streamFloorCopyPeakRssMiB' : 'streamFloorAesGcmPeakRssMiB'] = mebibytes(floorPeaks.hwm)
  }
  return {
    streamMiB: total / MiB,
    streamSeconds: Math.round(seconds * 10) / 10,
    streamEncryptPeakRssMiB: mebibytes(peaks.encrypt.hwm),
    streamDecryptPeakRssMiB: mebibytes(peaks.decrypt.hwm),
    streamEncryptLargestRssAnonMiB: mebibytes(peaks.encrypt.anon),
    streamEncryptLargestRssFileMiB: mebibytes(peaks.encrypt.file),
    streamDecryptLargestRssAnonMiB: mebibytes(peaks.decrypt.anon),
    streamDecryptLargestRssFileMiB: mebibytes(peaks.decrypt.file),
    ...floors,
  }
}

async function send(child: ChildProcess, pattern: Buffer, total: number): Promise<void> {
  for (let sent = 0; sent < total; sent += pattern.length) {
    if (!child.stdin!.write(pattern)) await once(child.stdin!, 'drain')
  }
  child.stdin!.end()
}

function mebibytes(bytes: number): number {
  return Math.round(bytes / MiB)
}

/** A child's VmHWM, and the largest RssAnon and RssFile seen, sampled every 50 ms until stop(). */
class MemoryPeaks {
  hwm = 0
  anon = 0
  file = 0
  readonly #sampler: NodeJS.Timeout

  constructor(child: ChildProcess) {
    this.#sampler = setInterval(() => {
      void readFile(`/proc/${child.pid}/status`, 'utf8')
        .catch(() => '')
        .then((status) => {
          const kB = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024
          this.hwm = Math.max(this.hwm, kB('VmHWM'))
          this.anon = Math.max(this.anon, kB('RssAnon'))
          this.file = Math.max(this.file, kB('RssFile'))
        })
    }, 50)
  }

  stop(): void {
    clearInterval(this.#sampler)
  }
}

async function exited(child: ChildProcess): Promise<void> {
  const [code] = (child.exitCode !== null ? [child.exitCode] : await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`keywrap ${child.spawnargs.slice(2, 3).join('')} exited with ${code}`)
}
