import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BatchedLineWriter } from '../../src/support/stdout-lines.js'

function recordingStream(fail?: Error) {
  const chunks: string[] = []
  return {
    chunks,
    write(chunk: string, callback: (error?: Error | null) => void) {
      chunks.push(chunk)
      setImmediate(() => callback(fail ?? null))
      return true
    },
  }
}

test('lines written in one turn go out as one write, in order, and each waiter hears back', async () => {
  const stream = recordingStream()
  const writer = new BatchedLineWriter(stream)
  const done: Promise<void>[] = []
  for (let i = 0; i < 5; i++) done.push(new Promise((resolve, reject) => writer.write(`line ${i}\n`, (error) => (error ? reject(error) : resolve()))))
  writer.write('request log without a callback\n')
  assert.equal(stream.chunks.length, 0, 'nothing is written before the turn ends')
  await Promise.all(done)
  assert.deepEqual(stream.chunks, ['line 0\nline 1\nline 2\nline 3\nline 4\nrequest log without a callback\n'])
  await new Promise<void>((resolve) => writer.write('next turn\n', () => resolve()))
  assert.equal(stream.chunks.length, 2)
})

test('a failed write is reported to every line that was in it', async () => {
  const writer = new BatchedLineWriter(recordingStream(new Error('EPIPE')))
  const results = await Promise.all([1, 2].map((n) => new Promise<string>((resolve) => writer.write(`${n}\n`, (error) => resolve(error?.message ?? 'ok')))))
  assert.deepEqual(results, ['EPIPE', 'EPIPE'])
})

test('a stream that throws fails its lines instead of the process', async () => {
  const writer = new BatchedLineWriter({
    write() {
      throw new Error('closed')
    },
  })
  const result = await new Promise<string>((resolve) => writer.write('x\n', (error) => resolve(error?.message ?? 'ok')))
  assert.equal(result, 'closed')
})
