import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { Entry } from '@google-cloud/logging/build/src/entry.js'
import type { AuditEntry } from '../../src/audit/audit-entry.js'
import { canonicalJson } from '../../src/audit/canonical-json.js'
import { AuditChain, chainHash, GENESIS_HASH, hashedFields, toAuditRecord } from '../../src/audit/chain.js'
import { auditPayload, entryMetadata, OPERATION_PRODUCER, StructuredLineFormatter } from '../../src/audit/structured-lines.js'
import { arbitraryEntries as entries, auditEntry } from './audit-fixtures.js'

const PROJECT = 'test-project'
const LOG = 'keywrap-audit'

/** The line @google-cloud/logging's LogSync writes for the entry: the reference the formatter must match. */
function libraryLine(chain: AuditChain, entry: AuditEntry): unknown {
  const sealed = chain.seal(toAuditRecord(entry))
  const payload = { ...auditPayload(sealed, entry), 'logging.googleapis.com/operation': { id: entry.requestId, producer: OPERATION_PRODUCER } }
  const structured = new Entry(entryMetadata(sealed, entry), payload).toStructuredJSON(PROJECT, false)
  return JSON.parse(JSON.stringify({ ...structured, logName: `projects/${PROJECT}/logs/${LOG}` }))
}

describe('structured audit lines', () => {
  test('are the lines @google-cloud/logging writes, for any entry', () => {
    fc.assert(
      fc.property(entries, (entry) => {
        const ours = new AuditChain('chain-x')
        const reference = new AuditChain('chain-x')
        const line = new StructuredLineFormatter({ projectId: PROJECT, logName: LOG }).format(ours.seal(toAuditRecord(entry)), entry)
        assert.ok(line.endsWith('}\n') && line.indexOf('\n') === line.length - 1, 'one line')
        assert.deepStrictEqual(JSON.parse(line), libraryLine(reference, entry))
      }),
      { numRuns: 400 },
    )
  })

  test('carry the record whose canonical JSON was hashed', () => {
    fc.assert(
      fc.property(entries, (entry) => {
        const sealed = new AuditChain('chain-y').seal(toAuditRecord(entry))
        const line = new StructuredLineFormatter({ projectId: PROJECT, logName: LOG }).format(sealed, entry)
        const fields = hashedFields(JSON.parse(line))
        assert.equal(canonicalJson(fields), sealed.fieldsJson)
        assert.equal(chainHash(GENESIS_HASH, fields), sealed.hash)
      }),
      { numRuns: 200 },
    )
  })

  test('leave out trace and span id when there are none', () => {
    const entry = auditEntry({ trace: undefined, spanId: undefined })
    const line = new StructuredLineFormatter({ projectId: PROJECT, logName: LOG }).format(new AuditChain().seal(toAuditRecord(entry)), entry)
    const parsed = JSON.parse(line)
    assert.ok(!('logging.googleapis.com/trace' in parsed) && !('logging.googleapis.com/spanId' in parsed))
    assert.equal(parsed.severity, 'NOTICE')
    assert.deepEqual(parsed['logging.googleapis.com/labels'], { audit: 'true' })
  })
})
