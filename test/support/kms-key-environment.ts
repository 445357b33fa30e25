/** The environment of an `npm start` whose one alias is a Cloud KMS key served by a running stand-in. */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { KmsStandIn, RunningKmsStandIn } from './kms-stand-in.js'

export interface KmsKeyEnvironment {
  readonly running: RunningKmsStandIn
  readonly home: string
  readonly env: Record<string, string>
}

/**
 * Creates `key` in the stand-in, starts it, and writes a KEYWRAP_HOME whose config maps `alias` to it
 * (and `otherKeys`' aliases to theirs).
 */
export async function kmsKeyEnvironment(
  kms: KmsStandIn,
  key: string,
  alias: string,
  extra: Record<string, string> = {},
  otherKeys: Record<string, string> = {},
): Promise<KmsKeyEnvironment> {
  kms.createKey(key)
  const running = await kms.start()
  const home = await mkdtemp(join(tmpdir(), `keywrap-${alias}-`))
  await writeFile(join(home, 'config.json'), JSON.stringify({ keys: { ...otherKeys, [alias]: `gcp-kms://${key}` } }))
  const env = {
    KEYWRAP_HOME: home,
    KEYWRAP_CONFIG: join(home, 'config.json'),
    KMS_EMULATOR_HOST: running.address,
    GOOGLE_CLOUD_PROJECT: 'test',
    KEYWRAP_KEY_REFRESH_SECONDS: '1',
    ...extra,
  }
  return { running, home, env }
}
