import assert from 'node:assert/strict'
import { test } from 'node:test'
import { heapBudgetViolation, requiredHeapBytes } from '../../src/config/heap-budget.js'

const MiB = 1048576

test('the default cache (100,000 DEKs) fits a heap of 160 MiB', () => {
  assert.equal(heapBudgetViolation({ cache: { maxEntries: 100_000, ttlSeconds: 600 } }, 160 * MiB), undefined)
  assert.ok(requiredHeapBytes({ cache: { maxEntries: 100_000, ttlSeconds: 600 } }) < 120 * MiB)
})

test('a cache too large for the heap is refused with both settings named', () => {
  const violation = heapBudgetViolation({ cache: { maxEntries: 1_000_000, ttlSeconds: 600 } }, 160 * MiB)
  assert.match(violation ?? '', /KEYWRAP_CACHE_MAX_ENTRIES=1000000 needs a V8 heap of at least 553 MiB, and this process's heap limit is 160 MiB/)
  assert.match(violation ?? '', /--max-old-space-size in NODE_OPTIONS/)
})

test('no cache needs only the process at rest: no entries, or a TTL of 0 (which turns the cache off)', () => {
  assert.equal(requiredHeapBytes({ cache: { maxEntries: 0, ttlSeconds: 600 } }), 64 * MiB)
  assert.equal(requiredHeapBytes({ cache: { maxEntries: 1_000_000, ttlSeconds: 0 } }), 64 * MiB)
  assert.equal(heapBudgetViolation({ cache: { maxEntries: 1_000_000, ttlSeconds: 0 } }, 160 * MiB), undefined)
})
