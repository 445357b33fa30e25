/** What `npm start` says, and refuses, about settings that would otherwise be silently ignored. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { runNode, startServer } from './support/processes.js'

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function waitFor(read: () => string, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !pattern.test(read()); i++) await sleep(50)
  assert.match(read(), pattern)
}

test('NODE_ENV other than production, development or test: exit 78 naming it, nothing listening', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
  const result = await runNode(['--import', 'tsx', 'src/server.ts'], { KEYWRAP_HOME: home, NODE_ENV: 'staging' })
  assert.equal(result.code, 78)
  assert.match(result.stderr, /NODE_ENV="staging" must be one of production, development, test/)
  assert.doesNotMatch(result.stderr, /listening/)
})

test('misspelled settings and an unreachable Redis: one warning line each, and the service runs', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
  const port = await closedPort()
  const server = await startServer({
    KEYWRAP_HOME: home,
    REDIS_URL: `redis://someone:hunter2@127.0.0.1:${port}/0`,
    KEYWRAP_CACHE_TTL_SECOND: '5',
    KEYWRAP_COLOUR: 'blue',
  })
  try {
    await waitFor(server.stdout, /cannot be reached/)
    const warnings = server
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"WARNING"'))
      .map((line) => (JSON.parse(line) as { message: string }).message)
    assert.deepEqual(warnings, [
      'keywrap does not read KEYWRAP_CACHE_TTL_SECOND (did you mean KEYWRAP_CACHE_TTL_SECONDS?), KEYWRAP_COLOUR; they are ignored (the settings are listed in the README)',
      `Redis at redis://127.0.0.1:${port}/0 cannot be reached (connect ECONNREFUSED 127.0.0.1:${port}); until it answers, shared-cache reads are misses and each instance caches on its own`,
    ])
    assert.doesNotMatch(server.stdout() + server.stderr(), /hunter2/)
    assert.equal((await fetch(`${server.baseUrl}/healthz`)).status, 200)
  } finally {
    await server.stop()
  }
})

test('a reachable Redis and known settings: no warning', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-e2e-'))
  const server = await startServer({
    KEYWRAP_HOME: home,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    KEYWRAP_REDIS_KEY_PREFIX: `kw-warn-${process.pid}:`,
  })
  try {
    await sleep(500)
    assert.doesNotMatch(server.stdout(), /"WARNING"/)
  } finally {
    await server.stop()
  }
})
