/**
 * @keywrap/client from its packed tarball, installed into an empty project, against `npm start`
 * (the embedded default, and a Cloud KMS key on the stand-in): round trips, the cache limits counted
 * in the service's audit trail, every tampering of an envelope and of a stream, retries against real
 * 429/503 answers, timeouts, and token functions.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, mkdtemp, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, type Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { installPackedClient, type ClientModule, type InstalledClient } from '../support/client-package.js'
import { FaultProxy } from '../support/fault-proxy.js'
import { KmsStandIn, type RunningKmsStandIn } from '../support/kms-stand-in.js'
import { MetadataStandIn } from '../support/metadata-stand-in.js'
import { REPO_ROOT, runCli, startServer, type RunningServer } from '../support/processes.js'

type Encryptor = InstanceType<ClientModule['EnvelopeEncryptor']>

/** Audit entries of `operation` (and `outcome`) the server has written so far. */
function auditCount(server: RunningServer, operation: string, outcome = 'allowed'): number {
  return server
    .stdout()
    .split('\n')
    .filter((line) => line.includes('"audit":"true"'))
    .map((line) => JSON.parse(line) as { operation: string; outcome: string })
    .filter((entry) => entry.operation === operation && entry.outcome === outcome).length
}

/** Service calls `body` makes, counted in the audit trail once it has settled. */
async function serviceCalls(server: RunningServer, body: () => Promise<unknown>, outcome = 'allowed'): Promise<{ generateDataKey: number; unwrap: number }> {
  await sleep(50)
  const before = { generateDataKey: auditCount(server, 'generateDataKey', outcome), unwrap: auditCount(server, 'unwrap', outcome) }
  await body()
  await sleep(150)
  return {
    generateDataKey: auditCount(server, 'generateDataKey', outcome) - before.generateDataKey,
    unwrap: auditCount(server, 'unwrap', outcome) - before.unwrap,
  }
}

async function rejectsCannotDecrypt(promise: Promise<unknown>, message?: string): Promise<void> {
  await assert.rejects(promise, (error: any) => error?.name === 'KeywrapError' && error.code === 'cannot_decrypt', message)
}

/** Runs `input` through a Transform; the output so far and the error it ended with, if any. */
async function throughStream(transform: Transform, input: Buffer, chunkSize = 1000): Promise<{ output: Buffer; error: any }> {
  const chunks: Buffer[] = []
  const pieces = Array.from({ length: Math.ceil(input.length / chunkSize) }, (_, index) => input.subarray(index * chunkSize, (index + 1) * chunkSize))
  try {
    await pipeline(Readable.from(pieces), transform, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) chunks.push(chunk)
    })
    return { output: Buffer.concat(chunks), error: undefined }
  } catch (error) {
    return { output: Buffer.concat(chunks), error }
  }
}

/**
 * The source and sink of encryptFrom() and decryptFrom(): the input in reads of at most `chunkSize`,
 * and a copy of each write (the encryptor releases what it wrote once the write resolves).
 */
async function throughPump(run: (source: any, sink: any) => Promise<void>, input: Buffer, chunkSize = 1000): Promise<{ output: Buffer; error: any }> {
  const chunks: Buffer[] = []
  let offset = 0
  const source = {
    async read(buffer: Buffer) {
      const copied = input.copy(buffer, 0, offset, Math.min(input.length, offset + chunkSize))
      offset += copied
      return copied
    },
  }
  const sink = {
    async write(bytes: Buffer) {
      chunks.push(Buffer.from(bytes))
    },
  }
  try {
    await run(source, sink)
    return { output: Buffer.concat(chunks), error: undefined }
  } catch (error) {
    return { output: Buffer.concat(chunks), error }
  }
}

type Context = Record<string, string> | undefined
/** Each stream test runs both ways: Transform streams, and a source and sink of the caller's. */
const STREAM_WAYS = [
  {
    name: 'encryptStream and decryptStream',
    encrypt: (encryptor: Encryptor, context: Context, input: Buffer, chunkSize?: number) => throughStream(encryptor.encryptStream(context), input, chunkSize),
    decrypt: (encryptor: Encryptor, context: Context, input: Buffer, chunkSize?: number) => throughStream(encryptor.decryptStream(context), input, chunkSize),
  },
  {
    name: 'encryptFrom and decryptFrom',
    encrypt: (encryptor: Encryptor, context: Context, input: Buffer, chunkSize?: number) =>
      throughPump((source, sink) => encryptor.encryptFrom(source, sink, context), input, chunkSize),
    decrypt: (encryptor: Encryptor, context: Context, input: Buffer, chunkSize?: number) =>
      throughPump((source, sink) => encryptor.decryptFrom(source, sink, context), input, chunkSize),
  },
]

let installed: InstalledClient
let kw: ClientModule

before(async () => {
  installed = await installPackedClient()
  kw = installed.module
})

describe('the packed tarball, installed into an empty project', () => {
  test('brings no dependency, ships its types, and is what a workload imports by name', async () => {
    assert.deepEqual(
      (await readdir(join(installed.project, 'node_modules'))).filter((name) => name !== '.package-lock.json'),
      ['@keywrap'],
    )
    const manifest = JSON.parse(await readFile(join(installed.project, 'node_modules/@keywrap/client/package.json'), 'utf8'))
    assert.equal(manifest.dependencies, undefined)
    assert.equal(manifest.peerDependenciesMeta['google-auth-library'].optional, true)
    const types = await readFile(join(installed.project, 'node_modules/@keywrap/client', manifest.types), 'utf8')
    for (const name of ['KeywrapClient', 'EnvelopeEncryptor', 'KeywrapError', 'googleIdToken']) assert.match(types, new RegExp(`\\b${name}\\b`))
    const result = await installed.runScript(`import * as client from '@keywrap/client'\nprocess.stdout.write(Object.keys(client).sort().join(' '))`)
    assert.equal(result.stdout, 'EnvelopeEncryptor KeywrapClient KeywrapError googleIdToken', result.stderr)
  })
})

describe('against npm start (embedded default)', () => {
  let home: string
  let server: RunningServer
  let token: string
  let client: InstanceType<ClientModule['KeywrapClient']>

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'keywrap-client-'))
    await writeFile(join(home, 'config.json'), JSON.stringify({ keys: { default: 'local://default', other: 'local://other' } }))
    server = await startServer({ KEYWRAP_HOME: home, KEYWRAP_CONFIG: join(home, 'config.json') })
    token = (await runCli(['token', '--sub', 'workload'], { KEYWRAP_HOME: home })).stdout.trim()
    client = new kw.KeywrapClient({ baseUrl: server.baseUrl, token })
  })
  after(() => server.stop())

  test('a script of the workload encrypts and decrypts with nothing but the package', async () => {
    const result = await installed.runScript(
      `import { KeywrapClient, EnvelopeEncryptor } from '@keywrap/client'
      const client = new KeywrapClient({ baseUrl: process.env.URL, token: process.env.TOKEN })
      const encryptor = new EnvelopeEncryptor({ client, alias: 'default' })
      const envelope = await encryptor.encrypt(Buffer.from('card 4242'), { tenant: 'acme' })
      process.stdout.write((await encryptor.decrypt(envelope, { tenant: 'acme' })).toString())`,
      { URL: server.baseUrl, TOKEN: token },
    )
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'card 4242')
  })

  test('a method per key operation, typed answers', async () => {
    assert.deepEqual(await client.listKeys(), { keys: [{ alias: 'default' }, { alias: 'other' }] })
    assert.equal((await client.getKey('default')).primaryVersion, 1)
    const generated = await client.generateDataKey('default', { context: { app: 'c' } })
    const unwrapped = await client.unwrap('default', { wrappedKey: generated.wrappedKey, context: { app: 'c' } })
    assert.equal(unwrapped.plaintext, generated.plaintext)
    const wrapped = await client.wrap('default', { plaintext: generated.plaintext! })
    assert.equal((await client.rewrap('default', { wrappedKey: wrapped.wrappedKey })).rewrapped, false)
    const batch = await client.batchUnwrap('default', { items: [{ wrappedKey: wrapped.wrappedKey }, { wrappedKey: generated.wrappedKey }] })
    assert.equal((batch.results[0] as { plaintext: string }).plaintext, generated.plaintext)
    assert.equal((batch.results[1] as { error: { code: string } }).error.code, 'cannot_unwrap')
    assert.equal((await client.batchRewrap('default', { items: [{ wrappedKey: wrapped.wrappedKey }] })).results.length, 1)
    assert.deepEqual(await client.purgeCache('default'), { alias: 'default', purged: true })
  })

  test("a refusal is a KeywrapError with the problem's status, code, detail and request id", async () => {
    const response = await fetch(`${server.baseUrl}/v1/keys/nope`, { headers: { authorization: `Bearer ${token}` } })
    const expected = (await response.json()) as { code: string; detail: string }
    await assert.rejects(client.getKey('nope'), (error: any): boolean => {
      assert.equal(error.name, 'KeywrapError')
      assert.ok(error instanceof kw.KeywrapError)
      assert.deepEqual([error.status, error.code, error.detail], [404, expected.code, expected.detail])
      assert.match(String(error.requestId), /^\S+$/)
      assert.equal(error.problem?.requestId, error.requestId)
      return true
    })
    const anonymous = new kw.KeywrapClient({ baseUrl: server.baseUrl, token: 'not-a-jwt' })
    await assert.rejects(anonymous.listKeys(), (error: any) => error.status === 401 && error.code === 'unauthenticated' && typeof error.requestId === 'string')
  })

  test('a reason goes with every call and is recorded as callerReason; a malformed one is refused at once', async () => {
    const explained = new kw.KeywrapClient({ baseUrl: server.baseUrl, token, reason: 'nightly export #7' })
    const generated = await explained.generateDataKey('default', { context: { job: 'export' } })
    await explained.unwrap('default', { wrappedKey: generated.wrappedKey, context: { job: 'export' } })
    const recorded = () =>
      server
        .stdout()
        .split('\n')
        .filter((line) => line.includes('"callerReason":"nightly export #7"'))
    const deadline = Date.now() + 5000
    while (recorded().length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.deepEqual(
      recorded().map((line) => JSON.parse(line).operation),
      ['generateDataKey', 'unwrap'],
    )
    for (const reason of ['', 'x'.repeat(257), 'line\nbreak']) {
      assert.throws(() => new kw.KeywrapClient({ baseUrl: server.baseUrl, token, reason }), /reason must be 1 to 256 printable ASCII characters/)
    }
  })

  test('round trips: empty, small, 1 MiB and over; the context in any key order', async () => {
    const encryptor = new kw.EnvelopeEncryptor({ client, alias: 'default' })
    for (const size of [0, 1, 100, 65_536, 1_048_576 + 3]) {
      const plaintext = randomBytes(size)
      const envelope = await encryptor.encrypt(plaintext, { tenant: 'acme', table: 'cards' })
      assert.ok(envelope.length > size + 16)
      assert.ok(!envelope.includes(plaintext.subarray(0, 32)) || size < 32)
      assert.deepEqual(await encryptor.decrypt(envelope, { table: 'cards', tenant: 'acme' }), plaintext)
    }
    const bare = await encryptor.encrypt(Buffer.from('no context'))
    assert.equal((await encryptor.decrypt(bare)).toString(), 'no context')
    assert.equal((await encryptor.decrypt(bare, {})).toString(), 'no context')
  })

  test('10 × maxMessages encrypts make 10 generateDataKey calls, concurrent or not; their decrypts 10 unwraps', async () => {
    const limits = { maxMessages: 100 }
    const encryptor = new kw.EnvelopeEncryptor({ client, alias: 'default', cache: limits })
    const envelopes: Buffer[] = []
    const encrypting = await serviceCalls(server, async () => {
      envelopes.push(...(await Promise.all(Array.from({ length: 500 }, (_, index) => encryptor.encrypt(Buffer.from(`message ${index}`), { app: 'limits' })))))
      for (let index = 500; index < 1000; index++) envelopes.push(await encryptor.encrypt(Buffer.from(`message ${index}`), { app: 'limits' }))
    })
    assert.deepEqual(encrypting, { generateDataKey: 10, unwrap: 0 })
    assert.equal(new Set(envelopes.map((envelope) => envelope.toString('latin1', 6, 60))).size, 10, 'ten distinct wrapped DEKs')

    const decryptor = new kw.EnvelopeEncryptor({ client, alias: 'default', cache: limits })
    const shuffled = envelopes.map((envelope, index) => ({ envelope, index })).sort(() => Math.random() - 0.5)
    const decrypting = await serviceCalls(server, async () => {
      const plaintexts = await Promise.all(shuffled.map(({ envelope }) => decryptor.decrypt(envelope, { app: 'limits' })))
      plaintexts.forEach((plaintext, position) => assert.equal(plaintext.toString(), `message ${shuffled[position]!.index}`))
    })
    assert.deepEqual(decrypting, { generateDataKey: 0, unwrap: 10 })
  })

  test('maxBytes and maxAgeMs end a DEK; each context has its own; a message over maxBytes gets a DEK of its own', async () => {
    const byBytes = new kw.EnvelopeEncryptor({ client, alias: 'default', cache: { maxBytes: 1000 } })
    assert.deepEqual(
      await serviceCalls(server, async () => {
        for (let index = 0; index < 50; index++) await byBytes.encrypt(Buffer.alloc(100))
        await byBytes.encrypt(Buffer.alloc(5000))
      }),
      { generateDataKey: 6, unwrap: 0 },
    )

    const byAge = new kw.EnvelopeEncryptor({ client, alias: 'default', cache: { maxAgeMs: 300 } })
    assert.deepEqual(
      await serviceCalls(server, async () => {
        await byAge.encrypt(Buffer.from('a'))
        await byAge.encrypt(Buffer.from('b'))
        await sleep(400)
        await byAge.encrypt(Buffer.from('c'))
        await byAge.encrypt(Buffer.from('d'), { other: 'context' })
      }),
      { generateDataKey: 3, unwrap: 0 },
    )
  })

  test('concurrent first decrypts of one envelope make one unwrap; a failed unwrap fails them all once', async () => {
    const envelope = await new kw.EnvelopeEncryptor({ client, alias: 'default' }).encrypt(Buffer.from('x'), { k: 'v' })
    const decryptor = new kw.EnvelopeEncryptor({ client, alias: 'default' })
    assert.deepEqual(await serviceCalls(server, () => Promise.all(Array.from({ length: 50 }, () => decryptor.decrypt(envelope, { k: 'v' })))), {
      generateDataKey: 0,
      unwrap: 1,
    })
    const failed = await serviceCalls(
      server,
      async () => {
        const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => decryptor.decrypt(envelope, { k: 'w' })))
        assert.ok(outcomes.every((outcome) => outcome.status === 'rejected' && (outcome.reason as any).code === 'cannot_decrypt'))
      },
      'failed',
    )
    assert.equal(failed.unwrap, 1)
  })

  describe('tampering: cannot_decrypt, and never any plaintext', () => {
    let encryptor: Encryptor
    let envelope: Buffer
    const context = { tenant: 'acme' }

    before(async () => {
      encryptor = new kw.EnvelopeEncryptor({ client, alias: 'default' })
      envelope = await encryptor.encrypt(Buffer.from('the plaintext'), context)
      assert.equal((await encryptor.decrypt(envelope, context)).toString(), 'the plaintext')
    })

    test('the wrong context, a missing or an extra entry', async () => {
      const wrongs: (Record<string, string> | undefined)[] = [{ tenant: 'acne' }, {}, undefined, { tenant: 'acme', extra: '' }, { Tenant: 'acme' }]
      for (const wrong of wrongs) {
        await rejectsCannotDecrypt(encryptor.decrypt(envelope, wrong), JSON.stringify(wrong))
      }
    })

    test('every byte altered, one at a time', async () => {
      for (let index = 0; index < envelope.length; index++) {
        const altered = Buffer.from(envelope)
        altered[index]! ^= index % 2 === 0 ? 0x01 : 0x20
        await rejectsCannotDecrypt(encryptor.decrypt(altered, context), `byte ${index}`)
      }
    })

    test('cut at every length, and extended', async () => {
      for (let length = 0; length < envelope.length; length++)
        await rejectsCannotDecrypt(encryptor.decrypt(envelope.subarray(0, length), context), `cut to ${length}`)
      for (const tail of [Buffer.alloc(1), Buffer.alloc(16), envelope]) await rejectsCannotDecrypt(encryptor.decrypt(Buffer.concat([envelope, tail]), context))
    })

    test("another envelope's body under this header, and another alias's envelope", async () => {
      const second = await encryptor.encrypt(Buffer.from('the plaintext'), context)
      const headerLength = envelope.length - 'the plaintext'.length - 16
      await rejectsCannotDecrypt(encryptor.decrypt(Buffer.concat([envelope.subarray(0, headerLength), second.subarray(headerLength)]), context))
      const other = new kw.EnvelopeEncryptor({ client, alias: 'other' })
      const othersEnvelope = await other.encrypt(Buffer.from('the plaintext'), context)
      assert.equal((await other.decrypt(othersEnvelope, context)).toString(), 'the plaintext')
      await rejectsCannotDecrypt(encryptor.decrypt(othersEnvelope, context))
      // Relabelled as this alias: the service refuses to unwrap another key's DEK.
      const relabelled = Buffer.from(othersEnvelope)
      relabelled.write('default', 6, 'latin1')
      assert.equal(relabelled.toString('latin1', 6, 13), 'default')
      const unpinned = new kw.EnvelopeEncryptor({ client })
      await rejectsCannotDecrypt(unpinned.decrypt(relabelled, context))
      await assert.rejects(unpinned.encrypt(Buffer.from('x')), TypeError)
      assert.equal((await unpinned.decrypt(othersEnvelope, context)).toString(), 'the plaintext')
    })

    test('not an envelope at all', async () => {
      for (const junk of [Buffer.alloc(0), Buffer.from('hello world'), randomBytes(300)]) await rejectsCannotDecrypt(encryptor.decrypt(junk, context))
    })
  })

  for (const way of STREAM_WAYS)
    describe(`streams of several segments: ${way.name}`, () => {
      const context = { file: 'backup.tar' }
      const segmentSize = 1024
      let encryptor: Encryptor
      let plaintext: Buffer
      let envelope: Buffer
      let headerLength: number
      const stride = segmentSize + 16

      before(async () => {
        encryptor = new kw.EnvelopeEncryptor({ client, alias: 'default', segmentSize })
        plaintext = randomBytes(segmentSize * 10 + 100)
        const encrypted = await way.encrypt(encryptor, context, plaintext, 700)
        assert.equal(encrypted.error, undefined)
        envelope = encrypted.output
        headerLength = envelope.length - plaintext.length - 11 * 16
      })
      const segment = (index: number) => envelope.subarray(headerLength + index * stride, headerLength + (index + 1) * stride)
      const header = () => envelope.subarray(0, headerLength)

      test('round trip in chunks of any size; decrypt() and the other way read it too', async () => {
        for (const chunkSize of [1, 100, 1040, 1 << 20]) {
          const { output, error } = await way.decrypt(encryptor, context, envelope, chunkSize)
          assert.equal(error, undefined)
          assert.deepEqual(output, plaintext)
        }
        assert.deepEqual(await encryptor.decrypt(envelope, context), plaintext)
        for (const other of STREAM_WAYS) assert.deepEqual((await other.decrypt(encryptor, context, envelope, 333)).output, plaintext, other.name)
      })

      test('exact multiples of the segment size, and nothing at all', async () => {
        for (const size of [0, segmentSize, segmentSize * 3]) {
          const data = randomBytes(size)
          const sealed = (await way.encrypt(encryptor, undefined, data)).output
          assert.deepEqual((await way.decrypt(encryptor, undefined, sealed)).output, data)
          assert.deepEqual(await encryptor.decrypt(sealed), data)
        }
      })

      test('truncated at a segment boundary or inside one: an error, and only verified segments before it', async () => {
        for (const length of [
          headerLength + 3 * stride,
          headerLength + 10 * stride,
          headerLength + 5 * stride + 100,
          envelope.length - 1,
          headerLength,
          headerLength - 1,
        ]) {
          const { output, error } = await way.decrypt(encryptor, context, envelope.subarray(0, length))
          assert.equal(error?.code, 'cannot_decrypt', `cut to ${length}`)
          assert.deepEqual(output, plaintext.subarray(0, output.length))
          assert.ok(output.length < plaintext.length)
          await rejectsCannotDecrypt(encryptor.decrypt(envelope.subarray(0, length), context))
        }
      })

      test('segments reordered, dropped or repeated', async () => {
        const attacks = {
          swapped: [0, 1, 3, 2, 4, 5, 6, 7, 8, 9, 10],
          dropped: [0, 1, 2, 4, 5, 6, 7, 8, 9, 10],
          repeated: [0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
          lastMovedFirst: [10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        }
        for (const [name, order] of Object.entries(attacks)) {
          const attacked = Buffer.concat([header(), ...order.map(segment)])
          const { output, error } = await way.decrypt(encryptor, context, attacked)
          assert.equal(error?.code, 'cannot_decrypt', name)
          assert.deepEqual(output, plaintext.subarray(0, output.length), name)
          await rejectsCannotDecrypt(encryptor.decrypt(attacked, context), name)
        }
      })

      test('extended: bytes, a segment of its own or of another stream after the final one', async () => {
        const other = (await way.encrypt(encryptor, context, randomBytes(segmentSize * 2))).output
        for (const tail of [Buffer.alloc(1), segment(9), other.subarray(other.length - stride), randomBytes(stride)]) {
          const { error } = await way.decrypt(encryptor, context, Buffer.concat([envelope, tail]))
          assert.equal(error?.code, 'cannot_decrypt')
          await rejectsCannotDecrypt(encryptor.decrypt(Buffer.concat([envelope, tail]), context))
        }
      })

      test('the wrong context, and a header larger than the reader accepts', async () => {
        const { output, error } = await way.decrypt(encryptor, { file: 'other.tar' }, envelope)
        assert.equal(error?.code, 'cannot_decrypt')
        assert.equal(output.length, 0)
        const strict = new kw.EnvelopeEncryptor({ client, alias: 'default', maxStreamSegmentSize: 512 })
        assert.match((await way.decrypt(strict, context, envelope)).error?.detail, /larger than this reader's limit of 512/)
      })
    })

  describe('retries, timeouts and tokens', () => {
    let proxy: FaultProxy
    before(async () => {
      proxy = await new FaultProxy(server.baseUrl).start()
    })
    after(() => proxy.close())
    const unavailable = (retryAfter?: string, status = 503) => ({
      status,
      headers: { ...(retryAfter !== undefined && { 'retry-after': retryAfter }), 'x-request-id': 'proxy-1' },
      body: { type: 'urn:keywrap:problem:provider_unavailable', title: 'Unavailable', status, code: status === 429 ? 'rate_limited' : 'provider_unavailable' },
    })

    test('a 503 with Retry-After: 1 is retried after a second, with the same request', async () => {
      proxy.reset()
      proxy.answerNext(unavailable('1'))
      const viaProxy = new kw.KeywrapClient({ baseUrl: proxy.url, token })
      const started = performance.now()
      const generated = await viaProxy.generateDataKey('default', { context: { a: 'b' } })
      const elapsed = performance.now() - started
      assert.ok(generated.wrappedKey.startsWith('kw1.'))
      assert.ok(elapsed >= 950, `retried after ${elapsed} ms`)
      assert.equal(proxy.requests.length, 2)
      assert.equal(proxy.requests[0]!.body, proxy.requests[1]!.body)
    })

    test('a 429 without Retry-After backs off and retries; attempts are bounded', async () => {
      proxy.reset()
      proxy.answerNext(unavailable(undefined, 429), unavailable(undefined, 429))
      const viaProxy = new kw.KeywrapClient({ baseUrl: proxy.url, token, retry: { baseDelayMs: 20 } })
      assert.equal((await viaProxy.listKeys()).keys.length, 2)
      assert.equal(proxy.requests.length, 3)

      proxy.reset()
      proxy.answerNext(...Array.from({ length: 5 }, () => unavailable('0')))
      await assert.rejects(viaProxy.listKeys(), (error: any) => error.status === 503 && error.code === 'provider_unavailable' && error.requestId === 'proxy-1')
      assert.equal(proxy.requests.length, 3, 'the default of 3 attempts')
    })

    test('a Retry-After beyond the budget fails at once; a 500 is not retried', async () => {
      proxy.reset()
      proxy.answerNext(unavailable('30'))
      const viaProxy = new kw.KeywrapClient({ baseUrl: proxy.url, token, retry: { maxDelayMs: 2000 } })
      const started = performance.now()
      await assert.rejects(viaProxy.listKeys(), (error: any) => error.status === 503)
      assert.ok(performance.now() - started < 900)
      assert.equal(proxy.requests.length, 1)
      proxy.reset()
      proxy.answerNext({ status: 500, body: { code: 'internal', status: 500 } }, { status: 502, headers: { 'content-type': 'text/html' }, body: '<html>' })
      await assert.rejects(viaProxy.listKeys(), (error: any) => error.status === 500 && error.code === 'internal')
      await assert.rejects(viaProxy.listKeys(), (error: any) => error.status === 502 && error.code === 'unexpected_response')
      assert.equal(proxy.requests.length, 2)
    })

    test('an attempt that gets no answer within timeoutMs is a timeout', async () => {
      proxy.reset()
      proxy.answerNext({ hang: true })
      const viaProxy = new kw.KeywrapClient({ baseUrl: proxy.url, token, timeoutMs: 300 })
      const started = performance.now()
      await assert.rejects(viaProxy.listKeys(), (error: any) => error.code === 'timeout' && error.status === undefined)
      assert.ok(performance.now() - started < 3000)
    })

    test('a token function is asked before every attempt; its failure is token_unavailable', async () => {
      proxy.reset()
      proxy.answerNext(unavailable('0'))
      let asked = 0
      const viaProxy = new kw.KeywrapClient({ baseUrl: proxy.url, token: async () => `${token}${++asked > 0 ? '' : ''}` })
      await viaProxy.listKeys()
      assert.equal(asked, 2)
      assert.ok(proxy.requests.every((request) => request.authorization === `Bearer ${token}`))
      const failing = new kw.KeywrapClient({ baseUrl: proxy.url, token: async () => Promise.reject(new Error('no credentials')) })
      await assert.rejects(failing.listKeys(), (error: any) => error.code === 'token_unavailable' && /no credentials/.test(error.detail))
    })

    test('googleIdToken without google-auth-library: the metadata server, asked once for the audience, the token reused', async () => {
      const metadata = await new MetadataStandIn(() => token).start()
      try {
        const result = await installed.runScript(
          `import { KeywrapClient, googleIdToken } from '@keywrap/client'
          const client = new KeywrapClient({ baseUrl: process.env.URL, token: googleIdToken({ audience: 'https://keywrap.example' }) })
          const first = await client.listKeys()
          const second = await client.getKey('default')
          process.stdout.write(JSON.stringify([first.keys.length, second.alias]))`,
          { URL: server.baseUrl, GCE_METADATA_HOST: metadata.host },
        )
        assert.equal(result.code, 0, result.stderr)
        assert.equal(result.stdout, '[2,"default"]')
        const identity = metadata.identityRequests()
        assert.deepEqual(
          identity.map(({ path, audience, flavor }) => ({ path, audience, flavor })),
          [{ path: '/computeMetadata/v1/instance/service-accounts/default/identity', audience: 'https://keywrap.example', flavor: 'Google' }],
        )
        assert.equal(identity[0]!.userAgent, 'node', 'asked with fetch: the library is not installed here')
      } finally {
        metadata.close()
      }
    })

    test('googleIdToken with google-auth-library installed: Application Default Credentials (here the metadata server)', async () => {
      await symlink(join(REPO_ROOT, 'node_modules/google-auth-library'), join(installed.project, 'node_modules/google-auth-library'), 'dir').catch(
        () => undefined,
      )
      const metadata = await new MetadataStandIn(() => token).start()
      try {
        const result = await installed.runScript(
          `import { KeywrapClient, googleIdToken } from '@keywrap/client'
          const client = new KeywrapClient({ baseUrl: process.env.URL, token: googleIdToken({ audience: 'https://keywrap.example/adc' }) })
          process.stdout.write(JSON.stringify((await client.listKeys()).keys.length))`,
          {
            URL: server.baseUrl,
            GCE_METADATA_HOST: metadata.host,
            METADATA_SERVER_DETECTION: 'assume-present',
            GOOGLE_CLOUD_PROJECT: 'workload-project',
            GOOGLE_APPLICATION_CREDENTIALS: '',
            HOME: installed.project,
          },
        )
        assert.equal(result.code, 0, result.stderr)
        assert.equal(result.stdout, '2')
        const identity = metadata.identityRequests()
        assert.equal(identity.length, 1)
        assert.equal(identity[0]!.audience, 'https://keywrap.example/adc')
        assert.equal(identity[0]!.userAgent, 'node-fetch', 'asked through google-auth-library (gaxios)')
      } finally {
        metadata.close()
      }
    })
  })
})

describe('against npm start with a Cloud KMS key (the stand-in)', () => {
  const KEY = 'projects/test/locations/europe-west1/keyRings/keywrap/cryptoKeys/workload'
  const kms = new KmsStandIn()
  let running: RunningKmsStandIn
  let server: RunningServer
  let client: InstanceType<ClientModule['KeywrapClient']>

  before(async () => {
    kms.createKey(KEY)
    running = await kms.start()
    const home = await mkdtemp(join(tmpdir(), 'keywrap-client-kms-'))
    await writeFile(join(home, 'config.json'), JSON.stringify({ keys: { payments: `gcp-kms://${KEY}` } }))
    const env = { KEYWRAP_HOME: home, KEYWRAP_CONFIG: join(home, 'config.json'), KMS_EMULATOR_HOST: running.address, GOOGLE_CLOUD_PROJECT: 'test' }
    // No server-side DEK cache: every unwrap reaches KMS, so KMS's counters show the client's calls.
    server = await startServer({ ...env, KEYWRAP_CACHE_MAX_ENTRIES: '0' })
    const token = (await runCli(['token'], env)).stdout.trim()
    client = new kw.KeywrapClient({ baseUrl: server.baseUrl, token })
  })
  after(async () => {
    await server.stop()
    await running.close()
  })

  test('2,000 messages with maxMessages 1000: 2 KMS encrypts, and 2 KMS decrypts to read them all back', async () => {
    const limits = { maxMessages: 1000 }
    const encryptor = new kw.EnvelopeEncryptor({ client, alias: 'payments', cache: limits })
    kms.resetCounters()
    const envelopes = await Promise.all(Array.from({ length: 2000 }, (_, index) => encryptor.encrypt(Buffer.from(`payment ${index}`), { ledger: 'eu' })))
    assert.deepEqual([kms.calls.Encrypt, kms.calls.Decrypt ?? 0], [2, 0])
    const decryptor = new kw.EnvelopeEncryptor({ client, alias: 'payments', cache: limits })
    const plaintexts = await Promise.all(envelopes.map((envelope) => decryptor.decrypt(envelope, { ledger: 'eu' })))
    assert.equal(plaintexts[1999]!.toString(), 'payment 1999')
    assert.deepEqual([kms.calls.Encrypt, kms.calls.Decrypt], [2, 2])
    assert.equal(auditCount(server, 'unwrap'), 2)
  })

  test('a stream round trip, and a cut stream refused', async () => {
    const encryptor = new kw.EnvelopeEncryptor({ client, alias: 'payments', segmentSize: 4096 })
    const plaintext = randomBytes(50_000)
    const envelope = (await throughStream(encryptor.encryptStream({ file: 'ledger.csv' }), plaintext, 3000)).output
    assert.deepEqual((await throughStream(encryptor.decryptStream({ file: 'ledger.csv' }), envelope, 5000)).output, plaintext)
    assert.equal(
      (await throughStream(encryptor.decryptStream({ file: 'ledger.csv' }), envelope.subarray(0, envelope.length - 4112))).error?.code,
      'cannot_decrypt',
    )
  })
})
