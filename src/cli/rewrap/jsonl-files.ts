/**
 * JSON Lines files read and written in constant memory: lines are split from the stream's chunks as
 * they arrive (the stream waits while the reader does), and an output file can be resumed: its
 * complete lines are counted and a partial last line, left by a process killed mid-write, is cut off.
 */
import { createReadStream } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import type { Readable } from 'node:stream'

const NEWLINE = 0x0a

/** The lines of FILE (or standard input for "-"), without their line ends; a last line without one counts. */
export async function* readLines(file: string, skip = 0): AsyncGenerator<string> {
  const input: Readable = file === '-' ? process.stdin.setEncoding('utf8') : createReadStream(file, 'utf8')
  let rest = ''
  let skipped = 0
  for await (const chunk of input) {
    const lines = (rest + (chunk as string)).split('\n')
    rest = lines.pop()!
    for (const line of lines) {
      if (skipped < skip) skipped++
      else yield line.endsWith('\r') ? line.slice(0, -1) : line
    }
  }
  if (rest !== '' && skipped >= skip) yield rest.endsWith('\r') ? rest.slice(0, -1) : rest
}

/** Opens FILE to read, so that a missing or unreadable file is reported before any work starts. */
export async function assertReadable(file: string): Promise<void> {
  if (file === '-') return
  const handle = await open(file, 'r')
  await handle.close()
}

/** The number of lines of FILE as readLines() yields them; reads it once without holding it. */
export async function countLines(file: string): Promise<number> {
  let lines = 0
  let last = NEWLINE
  for await (const chunk of createReadStream(file)) {
    const bytes = chunk as Buffer
    for (let at = bytes.indexOf(NEWLINE); at !== -1; at = bytes.indexOf(NEWLINE, at + 1)) lines++
    if (bytes.length > 0) last = bytes[bytes.length - 1]!
  }
  return last === NEWLINE ? lines : lines + 1
}

/**
 * The complete lines of FILE, and FILE cut after the last of them (0 when FILE does not exist). A
 * line is complete when its newline was written.
 */
export async function completeLines(file: string): Promise<number> {
  let handle: FileHandle
  try {
    handle = await open(file, 'r+')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw error
  }
  try {
    let lines = 0
    let position = 0
    let end = 0
    const buffer = Buffer.alloc(1 << 20)
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position)
      if (bytesRead === 0) break
      for (let at = buffer.indexOf(NEWLINE); at !== -1 && at < bytesRead; at = buffer.indexOf(NEWLINE, at + 1)) {
        lines++
        end = position + at + 1
      }
      position += bytesRead
    }
    if (end < position) {
      await handle.truncate(end)
      await handle.sync()
    }
    return lines
  } finally {
    await handle.close()
  }
}

export interface LineSink {
  /** Writes whole lines (each ending in a newline); resolves when the operating system has them. */
  write(text: string): Promise<void>
  /** Flushes to disk and closes. */
  close(): Promise<void>
}

const SYNC_INTERVAL_MS = 1000

/**
 * Appends to FILE. Each write is whole lines, so a process killed between writes leaves only whole
 * lines, and one killed during a write at most a partial last line, which completeLines() removes.
 * The data is synced to disk at most once a second and on close (a crash of the machine, not just of
 * the process, may lose the last second).
 */
export async function appendLines(file: string, options: { truncate: boolean }): Promise<LineSink> {
  const handle = await open(file, options.truncate ? 'w' : 'a')
  let lastSync = Date.now()
  return {
    async write(text) {
      await handle.write(text)
      if (Date.now() - lastSync >= SYNC_INTERVAL_MS) {
        await handle.sync()
        lastSync = Date.now()
      }
    },
    async close() {
      await handle.sync()
      await handle.close()
    },
  }
}

/** Standard output as a LineSink, waiting when the pipe is full. */
export function stdoutLines(): LineSink {
  return {
    write: (text) =>
      new Promise<void>((resolve, reject) => {
        process.stdout.write(text, (error) => (error ? reject(error) : resolve()))
      }),
    close: async () => undefined,
  }
}
