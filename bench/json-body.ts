/**
 * `node --import tsx bench/json-body.ts`: the cost of keywrap's JSON body parser (src/http/json-body.ts:
 * JSON.parse, a ':' count and a walk of the parsed value) beside Fastify's own (secure-json-parse),
 * on the bodies keywrap's operations take. Alternating rounds; the median of each is printed, in
 * nanoseconds per body. A shared machine moves both columns alike; compare them, not runs.
 */
import { parse as secureJsonParse } from 'secure-json-parse'
import { parseJsonBody } from '../src/http/json-body.js'

const wrappedKey = `kw1.${'A'.repeat(180)}`
const bodies: Record<string, string> = {
  'generateDataKey {}': '{}',
  'generateDataKey with a context': JSON.stringify({ bytes: 32, context: { tenant: 'acme', table: 'payments', column: 'iban' } }),
  'unwrap with a context': JSON.stringify({ wrappedKey, context: { tenant: 'acme', table: 'payments' } }),
  'context values holding ":"': JSON.stringify({ wrappedKey, context: { tenant: 'acme:eu', path: 'db:payments:iban' } }),
  'batchUnwrap, 100 items': JSON.stringify({ items: Array.from({ length: 100 }, () => ({ wrappedKey, context: { tenant: 'acme' } })) }),
}
const parsers: Record<string, (text: string) => unknown> = {
  fastify: (text) => secureJsonParse(text, { protoAction: 'error', constructorAction: 'error' }),
  keywrap: parseJsonBody,
}

function nanosecondsPerParse(parse: (text: string) => unknown, text: string, iterations: number): number {
  const started = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) parse(text)
  return Number(process.hrtime.bigint() - started) / iterations
}

const median = (values: number[]) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const ROUNDS = 15

console.log(`Node ${process.version}; ${ROUNDS} alternating rounds; median ns per body`)
console.log('| body | bytes | fastify (secure-json-parse) | keywrap (json-body.ts) | ratio |')
console.log('| --- | ---: | ---: | ---: | ---: |')
for (const [name, text] of Object.entries(bodies)) {
  const iterations = Math.max(200, Math.round(2_000_000 / (text.length + 50)))
  for (const parse of Object.values(parsers)) nanosecondsPerParse(parse, text, iterations) // warm-up
  const samples: Record<string, number[]> = { fastify: [], keywrap: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [parser, parse] of Object.entries(parsers)) samples[parser]!.push(nanosecondsPerParse(parse, text, iterations))
  }
  const fastify = median(samples.fastify!)
  const keywrap = median(samples.keywrap!)
  console.log(`| ${name} | ${text.length} | ${fastify.toFixed(0)} | ${keywrap.toFixed(0)} | ${(keywrap / fastify).toFixed(2)} |`)
}
