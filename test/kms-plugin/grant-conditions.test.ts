/**
 * The KMS plugin goes through the same grants as the HTTP API: a grant whose conditions the plugin's
 * calls cannot meet (it sends no context and no reason) refuses them as PERMISSION_DENIED, naming the
 * condition.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { status as GrpcStatus } from '@grpc/grpc-js'
import { KMS_PLUGIN_ISSUER } from '../../src/config/config.js'
import { kmsClient, pluginHome, startPlugin, type KmsClient, type RunningPlugin } from '../support/kms-plugin.js'

let plugin: RunningPlugin
let client: KmsClient

before(async () => {
  const { home, env } = await pluginHome({ kubernetes: 'local://kubernetes' })
  const grants = [
    { principals: ['kube-apiserver@tenant'], keys: ['kubernetes'], operations: ['wrap', 'unwrap'], issuer: KMS_PLUGIN_ISSUER, context: { tenant: 'acme' } },
    { principals: ['kube-apiserver@audited'], keys: ['kubernetes'], operations: ['wrap', 'unwrap'], issuer: KMS_PLUGIN_ISSUER, requireReason: true },
  ]
  await writeFile(env.KEYWRAP_CONFIG!, JSON.stringify({ keys: { kubernetes: 'local://kubernetes' }, policy: { grants } }))
  plugin = await startPlugin(join(home, 'kms.sock'), ['--alias', 'kubernetes', '--principal', 'kube-apiserver@tenant'], env)
  client = kmsClient(plugin.socket)
  // A second plugin under the grant that requires a reason shares the home, and so the keyring.
  audited = await startPlugin(join(home, 'audited.sock'), ['--alias', 'kubernetes', '--principal', 'kube-apiserver@audited'], env)
  auditedClient = kmsClient(audited.socket)
})
let audited: RunningPlugin
let auditedClient: KmsClient
after(async () => {
  client?.close()
  auditedClient?.close()
  await Promise.all([plugin?.stop(), audited?.stop()])
})

test('a context condition the plugin cannot meet: PERMISSION_DENIED naming the condition', async () => {
  await assert.rejects(client.encrypt(Buffer.alloc(32, 1)), (error: any) => {
    assert.equal(error.code, GrpcStatus.PERMISSION_DENIED)
    assert.match(error.details, /context key "tenant"/)
    return true
  })
})

test('a grant that requires a reason: PERMISSION_DENIED naming x-keywrap-reason', async () => {
  await assert.rejects(auditedClient.encrypt(Buffer.alloc(32, 1)), (error: any) => {
    assert.equal(error.code, GrpcStatus.PERMISSION_DENIED)
    assert.match(error.details, /requires a reason/)
    return true
  })
})
