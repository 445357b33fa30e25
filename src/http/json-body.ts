/**
 * Request bodies: JSON.parse, plus the two refusals JSON.parse does not make, each with a message
 * that points at the problem:
 *
 * - a member named twice in one object (JSON.parse keeps the last; a proxy or a client library in
 *   front of keywrap may have kept the first, so the two would disagree on what was asked);
 * - a member named `__proto__`, or `constructor` holding `prototype`, which could poison prototypes
 *   if a later copy of the body assigned rather than defined its members.
 *
 * The check costs little on every body: one pass counting ':' characters with indexOf, and one walk
 * over the parsed value counting its members and looking at their names. Only when the counts differ
 * (a duplicate, or ':' inside strings) is the text scanned to name the duplicate.
 * A syntax error is reported with its line, column and position, found by JSON.parse itself.
 */
import type { FastifyInstance } from 'fastify'
import { KeywrapError } from '../errors.js'

/** Replaces Fastify's JSON parser with parseJsonBody (the body limit stays the server's). */
export function installJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string))
    } catch (error) {
      done(error as KeywrapError, undefined)
    }
  })
}

export function parseJsonBody(text: string): unknown {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    if (error instanceof SyntaxError) throw syntaxError(text, error)
    throw error
  }
  if (typeof value !== 'object' || value === null) return value
  const members = countMembers(value)
  if (members < 0) {
    const at = forbiddenMember(value, '')!
    const what = at.name === '__proto__' ? '"__proto__"' : '"constructor" holding "prototype"'
    throw new KeywrapError(
      'invalid_request',
      `The body has a member named ${what} in the object at ${at.pointer || '/'}; keywrap refuses "__proto__", and "constructor" holding "prototype", anywhere in a body.`,
    )
  }
  // Each member has one ':' outside strings; JSON.parse kept one member of each name in an object.
  if (countColons(text) !== members && structuralColons(text) !== members) {
    const duplicate = firstDuplicateMember(text)
    if (duplicate)
      throw new KeywrapError(
        'invalid_request',
        `The body names the member ${JSON.stringify(duplicate.name)} twice in the object at ${duplicate.pointer || '/'}.`,
      )
  }
  return value
}

/** Every ':' in the text, inside strings or not: equal to the members when no string holds one. */
function countColons(text: string): number {
  let count = 0
  for (let at = text.indexOf(':'); at !== -1; at = text.indexOf(':', at + 1)) count++
  return count
}

/** The ':' characters outside strings, in valid JSON text. */
function structuralColons(text: string): number {
  let count = 0
  let at = 0
  for (;;) {
    const colon = text.indexOf(':', at)
    if (colon === -1) return count
    const quote = text.indexOf('"', at)
    if (quote === -1 || colon < quote) {
      count++
      at = colon + 1
    } else {
      at = endOfString(text, quote) + 1
    }
  }
}

/** Members of every object in `value`, or -1 when one is named `__proto__` or is `constructor` holding `prototype`. */
function countMembers(value: object): number {
  if (Array.isArray(value)) {
    let count = 0
    for (const item of value) {
      if (typeof item !== 'object' || item === null) continue
      const inner = countMembers(item as object)
      if (inner < 0) return -1
      count += inner
    }
    return count
  }
  let count = 0
  for (const name in value) {
    count++
    const member = (value as Record<string, unknown>)[name]
    if (typeof member !== 'object' || member === null) {
      if (name === '__proto__') return -1
      continue
    }
    if (name === '__proto__' || (name === 'constructor' && 'prototype' in member)) return -1
    const inner = countMembers(member)
    if (inner < 0) return -1
    count += inner
  }
  return count
}

/** Where countMembers found a refused name (only asked after it did). */
function forbiddenMember(value: unknown, pointer: string): { name: string; pointer: string } | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  for (const [name, member] of Object.entries(value)) {
    if (name === '__proto__' || (name === 'constructor' && typeof member === 'object' && member !== null && 'prototype' in member)) return { name, pointer }
    const inner = forbiddenMember(member, `${pointer}/${Array.isArray(value) ? name : escapePointer(name)}`)
    if (inner) return inner
  }
  return undefined
}

/**
 * Walks the (valid) JSON text, keeping the member names of each open object, and returns the first
 * name seen twice in one object with the JSON pointer of that object. Arrays' items are named by index.
 */
function firstDuplicateMember(text: string): { name: string; pointer: string } | undefined {
  interface Frame {
    readonly names: Set<string> | undefined
    readonly pointer: string
    index: number
    pendingName: string | undefined
  }
  const stack: Frame[] = []
  let expectingName = false
  for (let i = 0; i < text.length; i++) {
    const char = text[i]
    const top = stack.at(-1)
    if (char === '"') {
      const end = endOfString(text, i)
      if (top?.names && expectingName) {
        const name = JSON.parse(text.slice(i, end + 1)) as string
        if (top.names.has(name)) return { name, pointer: top.pointer }
        top.names.add(name)
        top.pendingName = name
        expectingName = false
      }
      i = end
    } else if (char === '{' || char === '[') {
      const pointer = top ? `${top.pointer}/${top.names ? escapePointer(top.pendingName ?? '') : top.index}` : ''
      stack.push({ names: char === '{' ? new Set() : undefined, pointer, index: 0, pendingName: undefined })
      expectingName = char === '{'
    } else if (char === '}' || char === ']') {
      stack.pop()
    } else if (char === ',') {
      if (top?.names) expectingName = true
      else if (top) top.index++
    }
  }
  return undefined
}

/** Index of the quote closing the string that opens at `start`: the first one not escaped. */
function endOfString(text: string, start: number): number {
  let end = text.indexOf('"', start + 1)
  while (end !== -1) {
    let backslashes = 0
    while (text.charCodeAt(end - 1 - backslashes) === 92) backslashes++
    if (backslashes % 2 === 0) return end
    end = text.indexOf('"', end + 1)
  }
  return text.length - 1
}

function escapePointer(name: string): string {
  return name.replace(/~/g, '~0').replace(/\//g, '~1')
}

/**
 * JSON.parse's message without the body's text (V8 quotes it in some messages), with the line, column
 * and position of the error. Where V8 gives no position, it is the shortest prefix of the text that
 * JSON.parse refuses for a reason other than its end: a longer prefix fails at the same place.
 */
function syntaxError(text: string, error: SyntaxError): KeywrapError {
  if (text.trim() === '') return new KeywrapError('invalid_request', 'The body is empty; send a JSON object.')
  const given = /at position (\d+)/.exec(error.message)
  const position = given ? Number(given[1]) : firstRefusedPrefix(text) - 1
  const reason = error.message
    .replace(/ (in JSON )?at position \d+.*$/s, '')
    .replace(/, [\s\S]* is not valid JSON$/, '')
    .replace(/^Unexpected end of JSON input$/, 'Unexpected end of the body')
    // V8 quotes the offending character as is: a newline or another control character is shown escaped.
    // eslint-disable-next-line no-control-regex -- control characters are exactly what this escapes
    .replace(/[\u0000-\u001f]/g, (char) => JSON.stringify(char).slice(1, -1))
  const before = text.slice(0, position)
  const line = before.split('\n').length
  const column = position - before.lastIndexOf('\n')
  return new KeywrapError('invalid_request', `The body is not valid JSON: ${reason} at line ${line}, column ${column} (position ${position}).`)
}

function firstRefusedPrefix(text: string): number {
  // A prefix is refused when JSON.parse fails before its end, not merely because it ends too soon.
  const refused = (length: number) => {
    try {
      JSON.parse(text.slice(0, length))
      return false
    } catch (error) {
      const message = (error as Error).message
      if (/Unexpected end of JSON input/.test(message)) return false
      const at = /at position (\d+)/.exec(message)
      return !at || Number(at[1]) < length
    }
  }
  // refused(text.length) is true or the whole text ended early: then the error is at its end.
  let low = 0
  let high = text.length
  if (!refused(high)) return text.length + 1
  while (low < high) {
    const middle = (low + high) >>> 1
    if (refused(middle)) high = middle
    else low = middle + 1
  }
  return low
}
