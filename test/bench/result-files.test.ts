/** A full bench run is kept under a dated name in bench/results/ and never overwrites an earlier one. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resultFileStem } from '../../bench/result-files.js'

test('a run is named by its day and Node major version, with a suffix for further runs that day', async () => {
  const root = await mkdtemp(join(tmpdir(), 'keywrap-bench-results-'))
  const day = new Date('2026-12-05T09:00:00Z')
  const first = await resultFileStem(day, '24.21.0', root)
  assert.equal(first, join(root, 'bench/results/2026-12-05-node24'))
  await writeFile(`${first}.md`, '')
  const second = await resultFileStem(day, '24.21.0', root)
  assert.equal(second, join(root, 'bench/results/2026-12-05-node24-2'))
  await writeFile(`${second}.json`, '')
  assert.equal(await resultFileStem(day, '24.21.0', root), join(root, 'bench/results/2026-12-05-node24-3'))
  assert.equal(await resultFileStem(day, '20.20.2', root), join(root, 'bench/results/2026-12-05-node20'))
})
