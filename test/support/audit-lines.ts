/**
 * The audit lines of key accesses a server under test wrote to stdout since `from` (a length of its
 * stdout), as raw lines; the chain's checkpoints (operation audit.checkpoint, written on their own
 * timer) are left out.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { RunningServer } from './processes.js'

export async function auditLinesSince(server: RunningServer, from: number): Promise<string[]> {
  // The stdout writer batches lines; give it a moment.
  await sleep(300)
  return server
    .stdout()
    .slice(from)
    .split('\n')
    .filter((line) => line.includes('"logging.googleapis.com/labels":{"audit":"true"}') && !line.includes('"operation":"audit.checkpoint"'))
}
