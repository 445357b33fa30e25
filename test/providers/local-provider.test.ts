import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeyringFile } from '../../src/providers/local/keyring-file.js'
import { LocalKeyProvider } from '../../src/providers/local/local-provider.js'
import { KeywrapError } from '../../src/errors.js'

async function freshKeyring(): Promise<KeyringFile> {
  const keyring = new KeyringFile(await mkdtemp(join(tmpdir(), 'keywrap-keyring-')))
  await keyring.ensureKeys(['default'])
  return keyring
}

async function provider(keyring: KeyringFile, name = 'default'): Promise<LocalKeyProvider> {
  const local = new LocalKeyProvider(name, keyring)
  await local.refresh()
  return local
}

function errorCode(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => (error instanceof KeywrapError ? error.code : String(error)),
  )
}

const aad = Buffer.from('context')
const dek = Buffer.alloc(32, 7)

test('encrypt then decrypt with the same AAD gives the key back, under the primary version', async () => {
  const local = await provider(await freshKeyring())
  const { ciphertext, version } = await local.encrypt(dek, aad)
  assert.equal(version, 1)
  assert.ok(!ciphertext.includes(dek))
  assert.deepEqual(await local.decrypt(ciphertext, aad, 1), { plaintext: dek, version: 1 })
})

test('a different AAD, a wrong claimed version, a flipped bit or another local key cannot decrypt', async () => {
  const keyring = await freshKeyring()
  await keyring.ensureKeys(['other'])
  const local = await provider(keyring)
  const { ciphertext } = await local.encrypt(dek, aad)
  assert.equal(await errorCode(local.decrypt(ciphertext, Buffer.from('other'), 1)), 'cannot_unwrap')
  assert.equal(await errorCode(local.decrypt(ciphertext, aad, 2)), 'cannot_unwrap')
  for (let i = 0; i < ciphertext.length; i++) {
    const flipped = Buffer.from(ciphertext)
    flipped[i]! ^= 1
    assert.notEqual(await errorCode(local.decrypt(flipped, aad, 1)), 'resolved', `byte ${i}`)
  }
  assert.equal(await errorCode((await provider(keyring, 'other')).decrypt(ciphertext, aad, 1)), 'cannot_unwrap')
})

test('rotation makes a new primary; old ciphertexts still decrypt until their version is disabled', async () => {
  const keyring = await freshKeyring()
  const local = await provider(keyring)
  const old = await local.encrypt(dek, aad)
  assert.equal(await keyring.rotate('default'), 2)
  await local.refresh()
  assert.equal(local.describe().primaryVersion, 2)
  assert.equal((await local.encrypt(dek, aad)).version, 2)
  assert.deepEqual((await local.decrypt(old.ciphertext, aad, 1)).plaintext, dek)
  await keyring.setState('default', 1, 'DISABLED')
  await local.refresh()
  assert.equal(await errorCode(local.decrypt(old.ciphertext, aad, 1)), 'key_version_not_enabled')
  await keyring.setState('default', 1, 'ENABLED')
  await local.refresh()
  assert.deepEqual((await local.decrypt(old.ciphertext, aad, 1)).plaintext, dek)
})

test('the primary version cannot be disabled, and unknown keys and versions are named in the error', async () => {
  const keyring = await freshKeyring()
  await assert.rejects(keyring.setState('default', 1, 'DISABLED'), /primary/)
  await assert.rejects(keyring.setState('default', 9, 'DISABLED'), /no version 9/)
  await assert.rejects(keyring.rotate('missing'), /no key named missing/)
})

test('the keyring file is private to its owner and holds no key twice', async () => {
  const keyring = await freshKeyring()
  assert.equal((await stat(keyring.path)).mode & 0o777, 0o600)
  await keyring.ensureKeys(['default'])
  const document = JSON.parse(await readFile(keyring.path, 'utf8'))
  assert.equal(document.keys.default.versions.length, 1)
})

test('concurrent writers on one home lose no update', async () => {
  const keyring = await freshKeyring()
  const writers = Array.from({ length: 8 }, () => new KeyringFile(join(keyring.path, '..')))
  const versions = await Promise.all(writers.map((writer) => writer.rotate('default')))
  assert.deepEqual(
    versions.sort((a, b) => a - b),
    [2, 3, 4, 5, 6, 7, 8, 9],
  )
  assert.equal((await keyring.readKey('default'))!.versions.length, 9)
})

test('a provider sees another process rotate the keyring without waiting for its refresh timer', async () => {
  const keyring = await freshKeyring()
  const local = await provider(keyring)
  try {
    await new KeyringFile(join(keyring.path, '..')).rotate('default')
    const deadline = Date.now() + 2000
    while (local.describe().primaryVersion !== 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.equal(local.describe().primaryVersion, 2)
  } finally {
    await local.close()
  }
})

test('a ciphertext made by the first implementation still decrypts (known answer: fixed key material)', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-keyring-'))
  const material = Buffer.alloc(32, 0x11).toString('base64')
  const keyring = {
    format: 1,
    keys: { payments: { primary: 1, versions: [{ version: 1, state: 'ENABLED', createTime: '2026-11-28T00:00:00.000Z', material }] } },
  }
  await writeFile(join(home, 'keyring.json'), JSON.stringify(keyring), { mode: 0o600 })
  const local = await provider(new KeyringFile(home), 'payments')
  const made = Buffer.from(
    '0000000184035483f0fa58e49e2518455f9e6efd763b4fdca378b73e27910cf0dcaec782d052b7921d069143c766122c813d2c6ab4f360c0b53a79401507cd04',
    'hex',
  )
  assert.deepEqual(await local.decrypt(made, aad, 1), { plaintext: dek, version: 1 })
  // And what it makes now has the same layout: version, IV, 32 bytes, tag.
  const { ciphertext } = await local.encrypt(dek, aad)
  assert.equal(ciphertext.length, made.length)
  assert.equal(ciphertext.readUInt32BE(0), 1)
  assert.deepEqual(await local.decrypt(ciphertext, aad, 1), { plaintext: dek, version: 1 })
  await local.close()
})

/** A keyring whose next read waits for release() after reading, and that does not watch its file. */
class GatedKeyring extends KeyringFile {
  private gate: Promise<void> | undefined
  private open: (() => void) | undefined

  holdNextRead(): void {
    this.gate = new Promise((resolve) => (this.open = resolve))
  }

  release(): void {
    this.open?.()
  }

  override async readKey(name: string) {
    const stored = await super.readKey(name)
    const gate = this.gate
    this.gate = undefined
    if (gate) await gate
    return stored
  }

  override watch(): () => void {
    return () => undefined
  }
}

test('a refresh that read the keyring before a newer one must not put back what the newer one replaced', async () => {
  const home = await mkdtemp(join(tmpdir(), 'keywrap-keyring-'))
  const keyring = new GatedKeyring(home)
  await keyring.ensureKeys(['default'])
  await keyring.rotate('default')
  const local = await provider(keyring)
  const versionOne = () => local.describe().versions.find((v) => v.version === 1)!.state
  keyring.holdNextRead()
  const stale = local.refresh() // reads version 1 ENABLED, then waits
  await new Promise((resolve) => setTimeout(resolve, 20))
  await keyring.setState('default', 1, 'DISABLED')
  await local.refresh()
  assert.equal(versionOne(), 'DISABLED')
  keyring.release()
  await stale
  assert.equal(versionOne(), 'DISABLED', 'the older read came back last and was not applied')
  await local.close()
})
