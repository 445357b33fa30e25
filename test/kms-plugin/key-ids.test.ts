import { test } from 'node:test'
import assert from 'node:assert/strict'
import { KeyIdDirectory, keyIdOf } from '../../src/kms-plugin/key-ids.js'
import type { KeyDescription } from '../../src/providers/key-provider.js'

const NAME = 'projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions'

function description(primaryVersion: number, count: number): KeyDescription {
  return {
    uri: 'gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k',
    provider: 'gcp-kms',
    primaryVersion,
    versions: Array.from({ length: count }, (_, index) => ({ version: index + 1, name: `${NAME}/${index + 1}`, state: 'ENABLED' as const })),
    refreshedAt: new Date().toISOString(),
  }
}

test('a key_id is stable for one alias and version, differs for another version or alias, and hides the resource name', () => {
  assert.equal(keyIdOf('kubernetes', `${NAME}/1`), keyIdOf('kubernetes', `${NAME}/1`))
  assert.notEqual(keyIdOf('kubernetes', `${NAME}/1`), keyIdOf('kubernetes', `${NAME}/2`))
  assert.notEqual(keyIdOf('kubernetes', `${NAME}/1`), keyIdOf('other', `${NAME}/1`))
  assert.ok(keyIdOf('kubernetes', `${NAME}/1`).length < 1024)
  assert.doesNotMatch(keyIdOf('kubernetes', `${NAME}/1`), /projects|cryptoKeys|kubernetes/)
})

test('the directory names the primary, finds every listed version by its key_id, and nothing else', () => {
  const keyIds = new KeyIdDirectory('kubernetes')
  const before = description(1, 1)
  const after = description(2, 2)
  assert.equal(keyIds.primaryKeyId(before), keyIdOf('kubernetes', `${NAME}/1`))
  assert.equal(keyIds.primaryKeyId(after), keyIdOf('kubernetes', `${NAME}/2`))
  assert.equal(keyIds.versionOf(after, keyIds.primaryKeyId(before))?.version, 1)
  assert.equal(keyIds.versionOf(before, keyIds.primaryKeyId(after)), undefined)
  assert.equal(keyIds.versionOf(after, 'keywrap-v1-unknown'), undefined)
})
