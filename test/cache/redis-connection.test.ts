import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis } from 'ioredis'
import { createRedisClient, parseRedisUrl } from '../../src/cache/redis-connection.js'
import { freePort, redisUrlForTests, startPrivateRedis, testKeyPrefix } from '../support/redis-server.js'
import { closeInstances, dekKey, keysUnder, newDek, rawClient, ready, sleep, startInstance } from './cache-fixture.js'

let url: string
let scratch: string

before(async () => {
  url = await redisUrlForTests()
  scratch = await mkdtemp(join(tmpdir(), 'keywrap-redis-'))
})

after(async () => {
  await closeInstances()
  await rm(scratch, { recursive: true, force: true })
})

test('Redis URLs: host, port, db, user and password (decoded), TLS; errors never repeat a password', () => {
  assert.deepEqual(parseRedisUrl('redis://cache.internal'), {
    host: 'cache.internal',
    port: 6379,
    username: undefined,
    password: undefined,
    db: 0,
    tls: false,
  })
  assert.deepEqual(parseRedisUrl('rediss://keywrap:p%40ss%2Fword@10.0.0.7:6380/4'), {
    host: '10.0.0.7',
    port: 6380,
    username: 'keywrap',
    password: 'p@ss/word',
    db: 4,
    tls: true,
  })
  assert.deepEqual(parseRedisUrl('redis://:only-password@[::1]:7000'), {
    host: '::1',
    port: 7000,
    username: undefined,
    password: 'only-password',
    db: 0,
    tls: false,
  })
  for (const bad of ['http://user:hunter2@host', 'redis://user:hunter2@host/db', 'not a url hunter2', 'redis://user:hunter2@/0']) {
    assert.throws(
      () => parseRedisUrl(bad),
      (error: Error) => !error.message.includes('hunter2'),
    )
  }
})

test('client options: no offline queue, no retries per request, a short command timeout; Cluster and Sentinel by configuration', async () => {
  const single = createRedisClient({ url: 'rediss://app:secret@cache.internal:6380/2', lazyConnect: true })
  assert.ok(single instanceof Redis)
  const options = single.options
  assert.equal(options.enableOfflineQueue, false)
  assert.equal(options.maxRetriesPerRequest, 0)
  assert.equal(options.commandTimeout, 75)
  assert.equal(options.db, 2)
  assert.equal(options.username, 'app')
  assert.equal(options.password, 'secret')
  assert.equal(options.host, 'cache.internal')
  assert.equal(options.port, 6380)
  assert.equal(options.tls?.servername, 'cache.internal')
  const delays = Array.from({ length: 30 }, (_, attempt) => options.retryStrategy!(attempt) as number)
  assert.ok(
    delays.every((delay) => delay > 0 && delay <= 2000),
    'reconnect back-off is bounded',
  )
  single.disconnect()

  const cluster = createRedisClient({ cluster: ['10.0.0.1:7000', '10.0.0.2:7001'], commandTimeoutMs: 50, lazyConnect: true })
  assert.ok(cluster instanceof Cluster)
  assert.equal(cluster.options.enableOfflineQueue, false)
  assert.equal(cluster.options.redisOptions?.commandTimeout, 50)
  assert.equal(cluster.options.redisOptions?.maxRetriesPerRequest, 0)
  cluster.disconnect()

  const sentinel = createRedisClient({
    url: 'redis://:master-secret@ignored/1',
    sentinels: [{ host: '10.0.0.9', port: 26379 }],
    sentinelName: 'keywrap',
    lazyConnect: true,
  })
  assert.ok(sentinel instanceof Redis)
  assert.deepEqual(sentinel.options.sentinels, [{ host: '10.0.0.9', port: 26379 }])
  assert.equal(sentinel.options.name, 'keywrap')
  assert.equal(sentinel.options.password, 'master-secret')
  assert.equal(sentinel.options.db, 1)
  sentinel.disconnect()

  assert.throws(() => createRedisClient({}), /URL, a list of cluster nodes or a list of sentinels/)
  assert.throws(() => createRedisClient({ cluster: [] }), /no nodes/)
  assert.throws(() => createRedisClient({ sentinels: [{ host: 'h', port: 1 }] }), /sentinelName/)
  assert.throws(() => createRedisClient({ cluster: ['no-port'] }), /host:port/)
})

test('the db number of the URL is the one used', async () => {
  const keyPrefix = testKeyPrefix('db')
  const base = url.replace(/\/\d*$/, '')
  await startInstance({ url: `${base}/7`, keyPrefix }).then((instance) => instance.cache.set(dekKey('orders'), newDek()))
  const db7 = await rawClient(`${base}/7`)
  const db0 = await rawClient(`${base}/0`)
  try {
    assert.equal((await keysUnder(db7, keyPrefix)).length, 3)
    assert.equal((await keysUnder(db0, keyPrefix)).length, 0)
  } finally {
    await Promise.all([db7.quit(), db0.quit()])
  }
})

test('a password, or an ACL user allowed only GET SET DEL INFO on kw:*, from the URL; a wrong one is a miss, not an error', async (t) => {
  const redis = await startPrivateRedis({
    args: ['--requirepass', 'pa ss', '--user', 'alice', 'on', '>wonder', '~kw:*', '+get', '+set', '+del', '+info'],
    password: '"pa ss"',
  })
  t.after(() => redis.stop())
  const withPassword = `redis://:pa%20ss@127.0.0.1:${redis.port}`
  const withUser = `redis://alice:wonder@127.0.0.1:${redis.port}`
  for (const good of [withPassword, withUser]) {
    const a = await startInstance({ url: good })
    const key = dekKey('orders')
    await a.cache.set(key, newDek())
    assert.equal((await a.cache.get(key))?.level, 'l1')
    const b = await startInstance({ url: good, l1Entries: 0 })
    assert.equal((await b.cache.get(key))?.level, 'l2')
  }
  const wrong = await startInstance({ url: `redis://alice:nope@127.0.0.1:${redis.port}`, waitReady: false })
  await sleep(100)
  await wrong.cache.set(dekKey('orders'), newDek())
  assert.equal(await wrong.cache.get(dekKey('orders')), undefined)
  assert.equal(wrong.cache.status(), 'degraded')
})

test('rediss:// speaks TLS (with a private CA given as tls options)', async (t) => {
  if (spawnSync('openssl', ['version']).status !== 0) return t.skip('openssl is not installed')
  const dir = join(scratch, 'tls')
  execFileSync('mkdir', ['-p', dir])
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=keywrap-test-ca')
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost')
  await writeFile(join(dir, 'ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1')
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'ext')
  const tlsPort = await freePort()
  const redis = await startPrivateRedis({
    args: [
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      join(dir, 'server.crt'),
      '--tls-key-file',
      join(dir, 'server.key'),
      '--tls-ca-cert-file',
      join(dir, 'ca.crt'),
      '--tls-auth-clients',
      'no',
    ],
  })
  t.after(() => redis.stop())
  const ca = await readFile(join(dir, 'ca.crt'))
  const tlsUrl = `rediss://localhost:${tlsPort}`
  const a = await startInstance({ url: tlsUrl, connection: { url: tlsUrl, tls: { ca } } })
  const key = dekKey('orders')
  await a.cache.set(key, newDek())
  const b = await startInstance({ url: tlsUrl, connection: { url: tlsUrl, tls: { ca } }, l1Entries: 0 })
  assert.equal((await b.cache.get(key))?.level, 'l2')

  const plainToTls = await startInstance({
    url: `redis://localhost:${tlsPort}`,
    connection: { url: `redis://localhost:${tlsPort}`, connectTimeoutMs: 200 },
    waitReady: false,
  })
  await sleep(100)
  assert.equal(await plainToTls.cache.get(key), undefined)
})

test('Cluster: a one-node cluster holding every slot', async (t) => {
  const dir = join(scratch, 'cluster')
  execFileSync('mkdir', ['-p', dir])
  const redis = await startPrivateRedis({
    args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-announce-ip', '127.0.0.1'],
  })
  t.after(() => redis.stop())
  const admin = await rawClient(redis.url)
  t.after(() => admin.quit())
  await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383')
  for (let i = 0; i < 200 && !String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok'); i++) await sleep(25)

  const connection = { cluster: [`127.0.0.1:${redis.port}`] }
  const a = await startInstance({ connection })
  const b = await startInstance({ connection, l1Entries: 0 })
  const key = dekKey('orders')
  const dek = newDek()
  await a.cache.set(key, dek)
  assert.deepEqual(await b.cache.get(key), { ...dek, level: 'l2' })
  await a.cache.purge('orders')
  await sleep(1000)
  assert.equal(await b.cache.get(key), undefined)
})

test('Sentinel: the master is found through a sentinel', async (t) => {
  const master = await startPrivateRedis()
  t.after(() => master.stop())
  const configFile = join(scratch, 'sentinel.conf')
  await writeFile(configFile, `sentinel monitor keywrap 127.0.0.1 ${master.port} 1\nsentinel down-after-milliseconds keywrap 5000\n`)
  const sentinel = await startPrivateRedis({ configFile, args: ['--sentinel'] })
  t.after(() => sentinel.stop())

  const connection = { sentinels: [{ host: '127.0.0.1', port: sentinel.port }], sentinelName: 'keywrap' }
  const a = await startInstance({ connection })
  const b = await startInstance({ connection, l1Entries: 0 })
  await ready(b.redis)
  const key = dekKey('orders')
  await a.cache.set(key, newDek())
  assert.equal((await b.cache.get(key))?.level, 'l2')
  const direct = await rawClient(master.url)
  t.after(() => direct.quit())
  assert.equal((await keysUnder(direct, 'kw:dek:')).length, 1)
})

test('auto-pipelining: commands of one turn share a write, and binary values and SET NX GET come back intact', async () => {
  const client = createRedisClient({ url, autoPipelining: true })
  const prefix = testKeyPrefix()
  try {
    await ready(client)
    const values = Array.from({ length: 100 }, (_, index) => Buffer.from([0, 255, index, 10, 13]))
    const writes = values.map((value, index) => client.set(`${prefix}ap:${index}`, value, 'PX', 60_000))
    // Issued in this turn and not yet sent: queued for one pipelined write.
    assert.ok((client as Redis).autoPipelineQueueSize > 1, 'commands were sent one by one')
    await Promise.all(writes)
    const read = await Promise.all(values.map((_, index) => client.getBuffer(`${prefix}ap:${index}`)))
    assert.deepEqual(read, values)
    const first = await client.setBuffer(`${prefix}ap:nx`, Buffer.from([1]), 'PX', 60_000, 'NX', 'GET')
    const second = await client.setBuffer(`${prefix}ap:nx`, Buffer.from([2]), 'PX', 60_000, 'NX', 'GET')
    assert.equal(first, null)
    assert.deepEqual(second, Buffer.from([1]))
  } finally {
    client.disconnect()
  }
})
