/** The deployment guide's configuration, with the environment the pipeline's deploy step sets, starts in production. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { loadConfig } from '../../src/config/load-config.js'
import { REPO_ROOT } from '../support/processes.js'

test('docs/deploy.md config.json + cloudbuild.yaml deploy environment: no violation in production', async () => {
  const guide = await readFile(join(REPO_ROOT, 'docs/deploy.md'), 'utf8')
  const json = /cat > config\.json <<'JSON'\n([\s\S]*?)\nJSON\n/.exec(guide)?.[1]
  assert.ok(json, 'docs/deploy.md has no config.json block')
  const directory = await mkdtemp(join(tmpdir(), 'keywrap-deploy-'))
  const configPath = join(directory, 'config.json')
  await writeFile(configPath, json.replaceAll('PROJECT', 'my-project').replaceAll('REGION', 'europe-west1'))

  const pipeline = parse(await readFile(join(REPO_ROOT, 'cloudbuild.yaml'), 'utf8')) as { steps: { id: string; args?: string[] }[] }
  const args = pipeline.steps.find((step) => step.id === 'deploy')!.args!
  const listOf = (flag: string) => (args.find((arg) => arg.startsWith(flag)) ?? '').slice(flag.length).split(',')
  const env: Record<string, string> = {}
  for (const pair of listOf('--set-env-vars=')) {
    const [name, value] = pair.split('=') as [string, string]
    env[name] = value.replace('${PROJECT_ID}', 'my-project')
  }
  env.KEYWRAP_CONFIG = configPath
  const secrets = listOf('--set-secrets=').map((pair) => pair.split('=')[0]!)
  assert.ok(secrets.includes('/etc/keywrap/config.json'))
  const secretValues: Record<string, string> = {
    REDIS_URL: 'rediss://default:secret@10.0.0.3:6378',
    KEYWRAP_AUDIT_FINGERPRINT_KEY: Buffer.alloc(32, 7).toString('base64'),
  }
  for (const name of secrets.filter((secret) => !secret.startsWith('/'))) {
    assert.ok(secretValues[name], `unexpected secret ${name}`)
    env[name] = secretValues[name]
  }
  const config = loadConfig(env)
  assert.equal(config.mode, 'production')
  assert.deepEqual(Object.keys(config.keys).sort(), ['cache', 'payments'])
  assert.equal(config.redis?.kekAlias, 'cache')
  assert.equal(config.auth.issuers.length, 1)
})
