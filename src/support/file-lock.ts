/**
 * Cross-process mutual exclusion on KEYWRAP_HOME, so that a server and `npx keywrap keys rotate` (or two
 * servers) never interleave a read-modify-write of the keyring. A lock older than STALE_MS belonged to
 * a process that died holding it and is broken.
 */
import { link, open, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'

const STALE_MS = 10_000
const WAIT_MS = 10_000

export async function withFileLock<T>(lockPath: string, action: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', 0o600)
      await handle.writeFile(String(process.pid))
      await handle.close()
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      if (await isStale(lockPath)) {
        await unlink(lockPath).catch(() => undefined)
        continue
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for the lock ${lockPath}; delete it if no keywrap process is running.`)
      await sleep(5 + Math.random() * 20)
    }
  }
  try {
    return await action()
  } finally {
    await unlink(lockPath).catch(() => undefined)
  }
}

async function isStale(lockPath: string): Promise<boolean> {
  try {
    return Date.now() - (await stat(lockPath)).mtimeMs > STALE_MS
  } catch {
    return false
  }
}

/** Replaces `path` with `content` atomically: readers see the old file or the new one, never half. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(temporary, content, { mode: 0o600, flush: true })
  await rename(temporary, path)
}

/**
 * Creates `path` with `content` unless it exists (0600, never half-written). link() fails when the
 * file exists, so when two processes race the first one's file wins and both read it afterwards.
 */
export async function createFileOnce(path: string, content: string): Promise<void> {
  const candidate = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.new`
  await writeFileAtomic(candidate, content)
  try {
    await link(candidate, path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  } finally {
    await unlink(candidate).catch(() => undefined)
  }
}
