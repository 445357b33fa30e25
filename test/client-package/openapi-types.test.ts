/** The client package's types are generated from openapi.yaml; they must be what the generator makes of it today. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript'
import { OPENAPI_PATH } from '../../src/http/openapi-contract.js'

const TYPES_PATH = fileURLToPath(new URL('../../client/src/openapi-types.ts', import.meta.url))
const PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url))
const TYPES_SCRIPT = 'openapi-typescript openapi.yaml -o client/src/openapi-types.ts --default-non-nullable false'

test('client/src/openapi-types.ts is exactly what openapi-typescript generates from openapi.yaml today', async () => {
  const scripts = (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { scripts: Record<string, string> }).scripts
  assert.equal(scripts['openapi:client-types'], TYPES_SCRIPT, 'package.json openapi:client-types changed: update the options this test generates with')
  const generated = COMMENT_HEADER + astToString(await openapiTS(pathToFileURL(OPENAPI_PATH), { silent: true, defaultNonNullable: false }))
  assert.ok(
    generated === readFileSync(TYPES_PATH, 'utf8'),
    'client/src/openapi-types.ts is out of date with openapi.yaml: run `npm run openapi:client-types` and commit the result',
  )
})
