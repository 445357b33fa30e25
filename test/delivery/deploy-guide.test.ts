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

  const pipeline = parse(await readFile(join(REPO_ROOT, 'cloudbuild.yaml'), 'utf8')) as {
    steps: { id: string; args?: string[] }[]
    substitutions: Record<string, string>
  }
  const args = pipeline.steps.find((step) => step.id === 'deploy')!.args!
  const listOf = (flag: string) => (args.find((arg) => arg.startsWith(flag)) ?? '').slice(flag.length).split(',')
  // Cloud Build's substitutions, their defaults included (which may name others).
  const substitute = (text: string): string =>
    text.replace(/\$\{(\w+)\}/g, (_, name: string) => (name === 'PROJECT_ID' ? 'my-project' : substitute(pipeline.substitutions[name] ?? `\${${name}}`)))
  const env: Record<string, string> = {}
  for (const pair of listOf('--set-env-vars=')) {
    const [name, value] = pair.split('=') as [string, string]
    env[name] = substitute(value)
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
  assert.equal(config.audit.signingKey, 'projects/my-project/locations/europe-west1/keyRings/keywrap/cryptoKeys/audit-checkpoints/cryptoKeyVersions/1')
  assert.match(guide, /--purpose=asymmetric-signing --default-algorithm=ec-sign-p256-sha256/)
  assert.match(guide, /roles\/cloudkms\.signerVerifier/)
})

interface DeployStep {
  id: string
  args?: string[]
}

test('the deploy configures startup and liveness probes on unauthenticated GET paths the service offers, as the guide says', async () => {
  const pipeline = parse(await readFile(join(REPO_ROOT, 'cloudbuild.yaml'), 'utf8')) as { steps: DeployStep[] }
  const args = pipeline.steps.find((step) => step.id === 'deploy')!.args!
  const probePath = (flag: string) => /httpGet\.path=([^,]+)/.exec(args.find((arg) => arg.startsWith(`${flag}=`)) ?? '')?.[1]
  assert.equal(probePath('--startup-probe'), '/readyz')
  assert.equal(probePath('--liveness-probe'), '/healthz')
  const contract = parse(await readFile(join(REPO_ROOT, 'openapi.yaml'), 'utf8')) as { paths: Record<string, { get?: { security?: unknown[] } }> }
  for (const path of ['/readyz', '/healthz']) assert.deepEqual(contract.paths[path]?.get?.security, [], `${path} must answer without a token`)
  const guide = await readFile(join(REPO_ROOT, 'docs/deploy.md'), 'utf8')
  assert.match(guide, /`GET \/readyz` is the startup probe/)
  assert.match(guide, /`GET \/healthz` the liveness probe/)
})

test('ingress and the guide agree: with internal ingress, the guide calls the service only from inside the VPC', async () => {
  const pipeline = parse(await readFile(join(REPO_ROOT, 'cloudbuild.yaml'), 'utf8')) as { steps: DeployStep[] }
  const ingress = pipeline.steps
    .find((step) => step.id === 'deploy')!
    .args!.find((arg) => arg.startsWith('--ingress='))
    ?.slice('--ingress='.length)
  const guide = await readFile(join(REPO_ROOT, 'docs/deploy.md'), 'utf8')
  assert.ok(ingress, 'the deploy sets no ingress')
  if (ingress === 'all') return
  assert.ok(guide.includes(`--ingress=${ingress}`), 'the guide does not name the ingress setting the pipeline deploys with')
  for (const [, block] of guide.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = block!.split('\n')
    const onTheVm = lines.findIndex((line) => /^# On the VM/.test(line))
    lines.forEach((line, index) => {
      if (/\bcurl\b.*\$URL/.test(line)) assert.ok(onTheVm !== -1 && onTheVm < index, `docs/deploy.md calls the service from outside the VPC: ${line}`)
    })
  }
  assert.match(guide, /--tunnel-through-iap/)
  assert.match(guide, /gcloud run services proxy/)
})
