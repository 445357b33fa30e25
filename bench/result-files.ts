/** Where a full bench run is kept: one dated pair of files per run in bench/results/. */
import { access, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ROOT } from './processes.js'

export const RESULTS_FOLDER = 'bench/results'

/**
 * The path without extension for a run on `day` under Node `nodeVersion`: bench/results/2026-12-03-node20,
 * then -2, -3… for further runs that day, so no run overwrites another. A run of one section names it
 * (`kind`): bench/results/2026-12-03-node20-rewrap-campaign.
 */
export async function resultFileStem(day: Date, nodeVersion: string, root = ROOT, kind?: string): Promise<string> {
  const folder = join(root, RESULTS_FOLDER)
  await mkdir(folder, { recursive: true })
  const base = `${day.toISOString().slice(0, 10)}-node${nodeVersion.split('.')[0]}${kind ? `-${kind}` : ''}`
  for (let run = 1; ; run++) {
    const stem = join(folder, run === 1 ? base : `${base}-${run}`)
    if (!(await exists(`${stem}.json`)) && !(await exists(`${stem}.md`))) return stem
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}
