/**
 * The CLI's default concurrency is derived from the service's default limits (src/cli/rewrap.ts): a
 * change to either must keep the campaign filling the service's provider-call slots without
 * overflowing the calls it queues.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_CHUNK, DEFAULT_CONCURRENCY } from '../../src/cli/rewrap.js'
import { DEFAULTS } from '../../src/config/load-config.js'
import { BATCH_PARALLELISM } from '../../src/keys/key-service.js'

test('the default requests in flight put at least twice the default provider-call slots of items in flight, and no more than slots and queue hold', () => {
  const itemsInFlight = DEFAULT_CONCURRENCY * Math.min(BATCH_PARALLELISM, DEFAULT_CHUNK)
  assert.ok(itemsInFlight >= 2 * DEFAULTS.KEYWRAP_PROVIDER_MAX_CONCURRENT, `${itemsInFlight} items for ${DEFAULTS.KEYWRAP_PROVIDER_MAX_CONCURRENT} slots`)
  assert.ok(itemsInFlight <= DEFAULTS.KEYWRAP_PROVIDER_MAX_CONCURRENT + DEFAULTS.KEYWRAP_PROVIDER_MAX_QUEUED)
})
