import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ENVIRONMENT_SETTINGS } from '../../src/config/load-config.js'
import { unknownSettings, unknownSettingsWarning } from '../../src/config/unknown-settings.js'

test('every setting keywrap reads is known; other variables are not its business', () => {
  const env = Object.fromEntries(Object.keys(ENVIRONMENT_SETTINGS).map((name) => [name, 'x']))
  assert.deepEqual(unknownSettings({ ...env, PATH: '/bin', KEYWRAPPER: '1' }), [])
  assert.equal(unknownSettingsWarning(env), undefined)
})

test('a misspelled KEYWRAP_ variable is named with the setting it most likely meant', () => {
  assert.deepEqual(unknownSettings({ KEYWRAP_CACHE_TTL_SECOND: '5', KEYWRAP_REDIS_KEYPREFIX: 'a:', KEYWRAP_COLOUR: 'blue' }), [
    { name: 'KEYWRAP_CACHE_TTL_SECOND', didYouMean: 'KEYWRAP_CACHE_TTL_SECONDS' },
    { name: 'KEYWRAP_COLOUR' },
    { name: 'KEYWRAP_REDIS_KEYPREFIX', didYouMean: 'KEYWRAP_REDIS_KEY_PREFIX' },
  ])
  assert.equal(
    unknownSettingsWarning({ KEYWRAP_CACHE_TTL_SECOND: '5', KEYWRAP_COLOUR: 'blue' }),
    'keywrap does not read KEYWRAP_CACHE_TTL_SECOND (did you mean KEYWRAP_CACHE_TTL_SECONDS?), KEYWRAP_COLOUR; they are ignored (the settings are listed in the README)',
  )
})
