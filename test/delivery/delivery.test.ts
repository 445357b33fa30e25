/** The container and the pipeline have the properties docs/deploy.md promises. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import semver from 'semver'
import { parse } from 'yaml'
import { keywrapEnvironment } from '../../bench/processes.js'
import { heapBudgetViolation } from '../../src/config/heap-budget.js'
import { loadConfig } from '../../src/config/load-config.js'
import { REPO_ROOT } from '../support/processes.js'

const read = (name: string) => readFile(join(REPO_ROOT, name), 'utf8')

interface Step {
  id: string
  name: string
  entrypoint?: string
  args?: string[]
  env?: string[]
  waitFor?: string[]
}

const pipeline = parse(await read('cloudbuild.yaml')) as { steps: Step[]; substitutions: Record<string, string>; images: string[] }
const step = (id: string) => {
  const found = pipeline.steps.find((s) => s.id === id)
  assert.ok(found, `cloudbuild.yaml has no step ${id}`)
  return found
}

/** Every step that `id` waits for, directly or not. */
function dependencies(id: string, seen = new Set<string>()): Set<string> {
  for (const dependency of step(id).waitFor ?? []) {
    if (dependency === '-' || seen.has(dependency)) continue
    seen.add(dependency)
    dependencies(dependency, seen)
  }
  return seen
}

test('every step has an id and waits only for steps declared before it', () => {
  const declared = new Set<string>()
  for (const s of pipeline.steps) {
    assert.ok(s.id, `a step of ${s.name} has no id`)
    for (const dependency of s.waitFor ?? [])
      assert.ok(dependency === '-' || declared.has(dependency), `${s.id} waits for ${dependency}, not declared before it`)
    declared.add(s.id)
  }
})

test('install → lint, typecheck, test (with Redis) → build → push → deploy', () => {
  for (const gate of ['install', 'lint', 'typecheck', 'test', 'redis'])
    assert.ok(dependencies('build-image').has(gate), `build-image does not wait for ${gate}`)
  assert.ok(dependencies('push-image').has('build-image'))
  assert.ok(dependencies('deploy').has('push-image'))
  assert.ok(dependencies('test').has('install') && dependencies('test').has('redis'))
})

test("the test step runs the README's test command against the pipeline's Redis", async () => {
  const readme = await read('README.md')
  assert.match(readme, /npm ci && npm test/)
  const test = step('test')
  assert.match([test.entrypoint, ...(test.args ?? [])].join(' '), /(^|&& |npm )npm test$|\bnpm test$/)
  assert.ok(test.env?.includes('REDIS_URL=redis://redis:6379'))
  assert.deepEqual(step('redis').args?.slice(0, 4), ['run', '--detach', '--network=cloudbuild', '--name=redis'])
})

test('the image goes to Artifact Registry, tagged with the commit, and is deployed as built', () => {
  assert.equal(pipeline.substitutions._IMAGE, '${_REGION}-docker.pkg.dev/${PROJECT_ID}/${_REPOSITORY}/keywrap:${COMMIT_SHA}')
  assert.deepEqual(pipeline.images, ['${_IMAGE}'])
  assert.ok(step('build-image').args?.includes('${_IMAGE}'))
  assert.ok(step('push-image').args?.includes('${_IMAGE}'))
})

test('the deploy is private, with its own identity, secrets, VPC egress and deliberate scaling', () => {
  const args = step('deploy').args ?? []
  for (const flag of ['--no-allow-unauthenticated', '--cpu-boost', '--vpc-egress=private-ranges-only']) assert.ok(args.includes(flag), `deploy lacks ${flag}`)
  for (const prefix of ['--image=${_IMAGE}', '--service-account=', '--set-secrets=', '--network=', '--subnet=', '--concurrency=', '--min-instances=']) {
    assert.ok(
      args.some((arg) => arg.startsWith(prefix)),
      `deploy lacks ${prefix}`,
    )
  }
  assert.ok(args.some((arg) => arg.startsWith('--set-env-vars=') && arg.includes('NODE_ENV=production') && arg.includes('GOOGLE_CLOUD_PROJECT=')))
  assert.ok(!args.includes('--allow-unauthenticated'))
})

test('Dockerfile: multi-stage, supported LTS runtime, production only, non-root, exec-form CMD', async () => {
  const dockerfile = await read('Dockerfile')
  const stages = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((match) => match[1]!)
  assert.ok(stages.length >= 2, 'not multi-stage')
  assert.match(stages.at(-1)!, /^node:(22|24)(-|$)|nodejs(22|24)/, `runtime ${stages.at(-1)} is not Node 22 or 24`)
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
  assert.match(runtime, /^ENV NODE_ENV=production$/m)
  assert.match(runtime, /^USER (node|nonroot|\d{3,})$/m)
  assert.match(runtime, /^CMD \["node", "dist\/src\/server\.js"\]$/m)
  assert.doesNotMatch(runtime, /COPY (--\S+ )*(src|test) /)
  assert.match(dockerfile, /npm prune --omit=dev/)
  const ignored = (await read('.dockerignore')).split('\n')
  for (const entry of ['node_modules', '.keywrap', '.git', 'test']) assert.ok(ignored.includes(entry), `.dockerignore lacks ${entry}`)
})

test("Dockerfile: the image's heap holds the default cache, and the bench runs keywrap with the same heap", async () => {
  const options = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(await read('Dockerfile'))?.[1]
  assert.ok(options, 'no NODE_OPTIONS in the Dockerfile')
  const oldSpaceMiB = Number(/--max-old-space-size=(\d+)/.exec(options)?.[1])
  const semiSpaceMiB = Number(/--max-semi-space-size=(\d+)/.exec(options)?.[1])
  // V8's heap limit: old space plus a young generation of three semi-spaces.
  const heapLimitMiB = oldSpaceMiB + 3 * semiSpaceMiB
  const defaults = loadConfig({ KEYWRAP_HOME: '/nonexistent' })
  assert.equal(heapBudgetViolation(defaults, heapLimitMiB * 1048576), undefined)
  assert.equal((await keywrapEnvironment({})).NODE_OPTIONS, options)
})

test('engines: the oldest supported Node satisfies every installed package, so npm ci warns of no engine on it', async () => {
  const manifest = JSON.parse(await read('package.json')) as { engines: { node: string } }
  const lock = JSON.parse(await read('package-lock.json')) as { packages: Record<string, { engines?: { node?: string } | string[] }> }
  const floor = /^>=(\d+\.\d+)$/.exec(manifest.engines.node)?.[1]
  assert.ok(floor, `engines.node ${manifest.engines.node} is not ">=MAJOR.MINOR"`)
  // Node 20 left maintenance in April 2026: the floor is a maintained LTS line.
  assert.ok(semver.major(`${floor}.0`) >= 22)
  for (const [path, entry] of Object.entries(lock.packages)) {
    const wanted = !Array.isArray(entry.engines) ? entry.engines?.node : undefined
    if (!wanted || path === '') continue
    assert.ok(semver.satisfies(`${floor}.0`, wanted), `${path} wants Node ${wanted}: Node ${floor} would print EBADENGINE`)
  }
  assert.equal((lock.packages[''] as { engines?: { node?: string } }).engines?.node, manifest.engines.node, 'package-lock.json is stale')
})

test(".ci/run tests on the oldest supported major and on the image's, and installs Chromium if it is missing", async () => {
  const ci = await read('.ci/run')
  const manifest = JSON.parse(await read('package.json')) as { engines: { node: string } }
  const floorMajor = /^>=(\d+)/.exec(manifest.engines.node)![1]
  const imageMajor = /^FROM node:(\d+)/m.exec(await read('Dockerfile'))![1]
  for (const major of [floorMajor, imageMajor]) assert.match(ci, new RegExp(`on_node ${major} `), `.ci/run does not test on Node ${major}`)
  assert.match(ci, /apt-get install[^\n]*chromium/)
})
