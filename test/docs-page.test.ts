/**
 * /docs as a person uses it: headless Chromium (Debian's, at /usr/bin/chromium) against a server on a
 * random port, a token pasted into Authorize, "Try it out" on generateDataKey, and a 200 in the page.
 * Without Chromium the test skips, outside CI only: .ci/run and the Cloud Build test step install it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { runCli, startServer } from './support/processes.js'

const CHROMIUM = '/usr/bin/chromium'
// The closed network refuses Chromium's own connections; these keep it from making any.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

test('/docs: Authorize with a token, Try it out on generateDataKey, 200', async (t) => {
  if (!existsSync(CHROMIUM)) {
    assert.ok(!process.env.CI, `${CHROMIUM} is missing in CI: .ci/run installs it (apt-get install chromium)`)
    return t.skip(`${CHROMIUM} is not installed (apt-get install chromium); this test runs in CI`)
  }
  const home = await mkdtemp(join(tmpdir(), 'keywrap-docs-'))
  const profile = await mkdtemp(join(tmpdir(), 'keywrap-chromium-'))
  const server = await startServer({ KEYWRAP_HOME: home })
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
  try {
    const token = await runCli(['token', '--sub', 'docs-reader'], { KEYWRAP_HOME: home })
    assert.equal(token.code, 0, token.stderr)
    const page = browser.pages()[0] ?? (await browser.newPage())
    const calls: { url: string; status: number }[] = []
    page.on('response', (response) => {
      if (response.url().includes(':generateDataKey')) calls.push({ url: response.url(), status: response.status() })
    })
    await page.goto(`${server.baseUrl}/docs/`)

    // The server list offers this instance, whatever its port, and no literal Markdown.
    const servers = page.locator('.servers select')
    await servers.waitFor()
    assert.deepEqual(await servers.locator('option').allTextContents(), ['/ - This keywrap instance, wherever this document is served from.'])

    await page.locator('button.authorize').first().click()
    await page.locator('.auth-container input').first().fill(token.stdout.trim())
    await page.locator('.auth-btn-wrapper button.authorize').click()
    await page.locator('.auth-btn-wrapper button.btn-done').click()

    const operation = page.locator('#operations-keys-generateDataKey')
    await operation.locator('.opblock-summary').click()
    const tryItOut = operation.locator('button.try-out__btn')
    if ((await tryItOut.textContent())?.includes('Try it out')) await tryItOut.click()
    await operation.locator('tr[data-param-name="alias"] input').fill('default')
    await operation.locator('button.execute').click()

    const status = operation.locator('.live-responses-table .response .response-col_status').first()
    await status.waitFor({ timeout: 15_000 })
    assert.equal((await status.textContent())?.trim(), '200')
    assert.match((await operation.locator('.live-responses-table').textContent()) ?? '', /"wrappedKey"/)
    assert.deepEqual(calls, [{ url: `${server.baseUrl}/v1/keys/default:generateDataKey`, status: 200 }], 'the page called this server, on its port')
  } finally {
    await browser.close()
    await server.stop()
    await rm(profile, { recursive: true, force: true })
  }
})
