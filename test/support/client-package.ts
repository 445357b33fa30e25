/**
 * @keywrap/client as a workload gets it: `npm pack` in client/ (its prepack builds it), then
 * `npm install TARBALL --offline` into an empty project, with nothing else from this repository.
 * Packing is the slow step: a tarball is kept in the temporary directory under a hash of what goes
 * into it, and packed again when that changes.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { access, mkdir, mkdtemp, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { REPO_ROOT } from './processes.js'

export type ClientModule = typeof import('../../client/src/index.js')

export interface InstalledClient {
  /** The project the tarball was installed into. */
  readonly project: string
  readonly tarball: string
  /** The installed package, imported into this process. */
  readonly module: ClientModule
  /** Runs an ES module script in the project, as its own code would. */
  runScript(source: string, env?: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }>
}

const CLIENT_DIR = join(REPO_ROOT, 'client')

export async function installPackedClient(): Promise<InstalledClient> {
  const tarball = await packedTarball()
  const project = await mkdtemp(join(tmpdir(), 'keywrap-workload-'))
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'workload', private: true, type: 'module' }))
  await run('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund', '--loglevel=error'], project)
  const entry = join(project, 'node_modules/@keywrap/client/dist/index.js')
  const module = (await import(pathToFileURL(entry).href)) as ClientModule
  return {
    project,
    tarball,
    module,
    async runScript(source, env = {}) {
      const script = join(project, `script-${createHash('sha256').update(source).digest('hex').slice(0, 12)}.mjs`)
      await writeFile(script, source)
      return run(process.execPath, [script], project, env, false)
    },
  }
}

async function packedTarball(): Promise<string> {
  const tarball = join(tmpdir(), `keywrap-client-${await sourceHash()}.tgz`)
  if (await exists(tarball)) return tarball
  const staging = await mkdtemp(join(tmpdir(), 'keywrap-client-pack-'))
  await run('npm', ['pack', '--pack-destination', staging, '--loglevel=error'], CLIENT_DIR)
  const [packed] = (await readdir(staging)).filter((name) => name.endsWith('.tgz'))
  if (!packed) throw new Error('npm pack made no tarball')
  await rename(join(staging, packed), tarball)
  return tarball
}

/** What the tarball is made of: the client's manifest, configuration, README and sources, and the tsconfig it extends. */
async function sourceHash(): Promise<string> {
  const hash = createHash('sha256')
  const files = ['package.json', 'tsconfig.json', 'README.md', ...(await readdir(join(CLIENT_DIR, 'src'))).sort().map((name) => `src/${name}`)]
  for (const file of files)
    hash
      .update(file)
      .update('\0')
      .update(await readFile(join(CLIENT_DIR, file)))
      .update('\0')
  hash.update(await readFile(join(REPO_ROOT, 'tsconfig.json')))
  return hash.digest('hex').slice(0, 16)
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}

async function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}, check = true) {
  await mkdir(cwd, { recursive: true })
  // Without the npm_config_* of the npm that runs the tests: this is a separate user's npm.
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_config_') && name !== 'NODE_TEST_CONTEXT'))
  const child = spawn(command, args, { cwd, env: { ...base, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  if (check && code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stderr}`)
  return { code, stdout, stderr }
}
