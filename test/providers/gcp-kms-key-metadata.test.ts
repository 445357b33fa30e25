// A CryptoKey as Cloud KMS lists it, turned into keywrap's KeyDescription: enums by name or by number.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { describeCryptoKey } from '../../src/providers/gcp-kms/key-metadata.js'

const KEY = 'projects/p/locations/global/keyRings/r/cryptoKeys/k'
const refreshedAt = new Date('2026-12-03T10:00:00.000Z')

describe('describeCryptoKey', () => {
  it('reads enums given as numbers as the names gax gives', () => {
    const description = describeCryptoKey(
      `gcp-kms://${KEY}`,
      KEY,
      // ENCRYPT_DECRYPT, HSM, GOOGLE_SYMMETRIC_ENCRYPTION; version states ENABLED, DISABLED, PENDING_EXTERNAL_DESTRUCTION.
      { purpose: 1, primary: { name: `${KEY}/cryptoKeyVersions/2`, protectionLevel: 2, algorithm: 1 } },
      [
        { name: `${KEY}/cryptoKeyVersions/2`, state: 1 },
        { name: `${KEY}/cryptoKeyVersions/1`, state: 2 },
        { name: `${KEY}/cryptoKeyVersions/3`, state: 9 },
      ],
      refreshedAt,
    )
    assert.equal(description.primaryVersion, 2)
    assert.deepEqual(
      description.versions.map(({ version, state }) => [version, state]),
      [
        [1, 'DISABLED'],
        [2, 'ENABLED'],
        [3, 'DESTROYED'],
      ],
    )
    assert.deepEqual(description.attributes, { protectionLevel: 'HSM', algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION' })
  })

  it('reads enums given as names, and refuses a key of another purpose by its name', () => {
    const named = describeCryptoKey(
      `gcp-kms://${KEY}`,
      KEY,
      { purpose: 'ENCRYPT_DECRYPT', primary: { name: `${KEY}/cryptoKeyVersions/1`, protectionLevel: 'SOFTWARE' } },
      [{ name: `${KEY}/cryptoKeyVersions/1`, state: 'ENABLED' }],
      refreshedAt,
    )
    assert.equal(named.versions[0]?.state, 'ENABLED')
    assert.equal(named.attributes?.protectionLevel, 'SOFTWARE')
    assert.throws(
      () => describeCryptoKey(`gcp-kms://${KEY}`, KEY, { purpose: 5, primary: { name: `${KEY}/cryptoKeyVersions/1` } }, [], refreshedAt),
      /has purpose ASYMMETRIC_SIGN; keywrap needs an ENCRYPT_DECRYPT key/,
    )
  })

  it('treats a version state it does not know as DISABLED', () => {
    const description = describeCryptoKey(
      `gcp-kms://${KEY}`,
      KEY,
      { purpose: 1, primary: { name: `${KEY}/cryptoKeyVersions/1` } },
      [{ name: `${KEY}/cryptoKeyVersions/1`, state: Number('999') }],
      refreshedAt,
    )
    assert.equal(description.versions[0]?.state, 'DISABLED')
  })
})
