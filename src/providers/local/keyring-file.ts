/**
 * The local keyring: the development root of trust, a JSON file in KEYWRAP_HOME (mode 0600) holding one
 * KEK per local://NAME, each with numbered AES-256 versions. Shared by every process on that home:
 * writes happen under the home's lock and replace the file atomically.
 */
import { watch } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { withFileLock, writeFileAtomic } from '../../support/file-lock.js'
import type { KeyVersionState } from '../key-provider.js'

export interface StoredVersion {
  version: number
  state: KeyVersionState
  createTime: string
  /** base64 AES-256 key; removed when the version is destroyed. */
  material?: string
}

export interface StoredKey {
  primary: number
  versions: StoredVersion[]
}

interface KeyringDocument {
  format: 1
  keys: Record<string, StoredKey>
}

export class KeyringFile {
  readonly path: string
  private readonly home: string

  constructor(home: string) {
    this.home = home
    this.path = join(home, 'keyring.json')
  }

  async read(): Promise<KeyringDocument> {
    try {
      const document = JSON.parse(await readFile(this.path, 'utf8')) as KeyringDocument
      if (document.format !== 1 || typeof document.keys !== 'object') throw new Error('unknown format')
      return document
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { format: 1, keys: {} }
      throw new Error(`The local keyring ${this.path} cannot be read: ${(error as Error).message}`)
    }
  }

  async readKey(name: string): Promise<StoredKey | undefined> {
    return (await this.read()).keys[name]
  }

  /** Creates each named key that does not exist yet, with one enabled primary version. */
  async ensureKeys(names: readonly string[]): Promise<void> {
    const existing = await this.read()
    if (names.every((name) => existing.keys[name])) return
    await this.update((document) => {
      for (const name of names) document.keys[name] ??= { primary: 1, versions: [newVersion(1)] }
    })
  }

  /** Adds a version and makes it primary; returns its number. */
  async rotate(name: string): Promise<number> {
    let created = 0
    await this.update((document) => {
      const key = requireKey(document, name)
      created = Math.max(...key.versions.map((v) => v.version)) + 1
      key.versions.push(newVersion(created))
      key.primary = created
    })
    return created
  }

  async setState(name: string, version: number, state: 'ENABLED' | 'DISABLED'): Promise<void> {
    await this.update((document) => {
      const key = requireKey(document, name)
      const stored = key.versions.find((v) => v.version === version)
      if (!stored) throw new Error(`local://${name} has no version ${version}.`)
      if (stored.state === 'DESTROYED') throw new Error(`local://${name} version ${version} is destroyed.`)
      if (state !== 'ENABLED' && key.primary === version) {
        throw new Error(`Version ${version} is the primary of local://${name}; rotate first, then disable it.`)
      }
      stored.state = state
    })
  }

  /**
   * Calls `listener` soon after the keyring file is replaced (by any process), so a running server
   * sees `keywrap keys rotate` at once; the periodic refresh stays as the backstop where file
   * events are not delivered. Returns a function that stops watching.
   */
  watch(listener: () => void): () => void {
    let timer: NodeJS.Timeout | undefined
    const watcher = watch(this.home, { persistent: false }, (_event, file) => {
      if (file !== 'keyring.json') return
      clearTimeout(timer)
      timer = setTimeout(listener, 20)
    })
    watcher.on('error', () => watcher.close())
    return () => {
      clearTimeout(timer)
      watcher.close()
    }
  }

  private async update(change: (document: KeyringDocument) => void): Promise<void> {
    await mkdir(this.home, { recursive: true, mode: 0o700 })
    await withFileLock(join(this.home, '.lock'), async () => {
      const document = await this.read()
      change(document)
      await writeFileAtomic(this.path, `${JSON.stringify(document, null, 2)}\n`)
    })
  }
}

function newVersion(version: number): StoredVersion {
  return { version, state: 'ENABLED', createTime: new Date().toISOString(), material: randomBytes(32).toString('base64') }
}

function requireKey(document: KeyringDocument, name: string): StoredKey {
  const key = document.keys[name]
  if (!key) throw new Error(`The local keyring has no key named ${name}.`)
  return key
}
