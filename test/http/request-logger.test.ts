/** LazyChildLogger: a request's pino child, made only when the request logs, and then the same as one. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import { LazyChildLogger, requestLoggerOptions } from '../../src/http/request-logger.js'

function parentLogger() {
  const lines: Record<string, unknown>[] = []
  const app = Fastify({ logger: requestLoggerOptions('info', { write: (line: string) => lines.push(JSON.parse(line)) }) })
  const parent = app.log
  let children = 0
  const child = parent.child.bind(parent)
  parent.child = (bindings, options) => {
    children++
    return child(bindings, options)
  }
  return { parent: parent as FastifyBaseLogger, lines, children: () => children }
}

test('no child is made for a request that does not log, nor for a line below the level', () => {
  const { parent, lines, children } = parentLogger()
  const log = new LazyChildLogger(parent, { reqId: 'r-1' }, {})
  assert.equal(log.isLevelEnabled('debug'), false)
  assert.equal(log.isLevelEnabled('info'), true)
  log.debug('not written')
  log.trace('not written')
  log.silent()
  assert.equal(children(), 0)
  assert.deepEqual(lines, [])
  assert.deepEqual(log.bindings(), { reqId: 'r-1' })
})

test('a line at the level is written by a child with the request’s bindings', () => {
  const { parent, lines, children } = parentLogger()
  const log = new LazyChildLogger(parent, { reqId: 'r-2' }, {})
  log.info({ status: 401 }, 'request completed')
  log.warn('second line')
  assert.equal(children(), 1)
  assert.deepEqual(
    lines.map((line) => [line.reqId, line.severity, line.message]),
    [
      ['r-2', 'INFO', 'request completed'],
      ['r-2', 'WARNING', 'second line'],
    ],
  )
  assert.deepEqual(log.bindings(), { reqId: 'r-2' })
})

test('its level follows the child once set, as a pino child’s does', () => {
  const { parent, lines } = parentLogger()
  const log = new LazyChildLogger(parent, { reqId: 'r-3' }, {})
  assert.equal(log.level, 'info')
  log.level = 'debug'
  assert.equal(log.level, 'debug')
  assert.equal(log.isLevelEnabled('debug'), true)
  log.debug('now written')
  assert.deepEqual(lines.map((line) => [line.reqId, line.severity]), [['r-3', 'DEBUG']])
  assert.equal(parent.level, 'info', 'the parent keeps its level')
})

test('a route log level in the options applies before the child is made', () => {
  const { parent, children } = parentLogger()
  const log = new LazyChildLogger(parent, { reqId: 'r-4' }, { level: 'error' })
  assert.equal(log.level, 'error')
  assert.equal(log.isLevelEnabled('info'), false)
  log.info('not written')
  assert.equal(children(), 1, 'answering for its own level takes the real child')
})
