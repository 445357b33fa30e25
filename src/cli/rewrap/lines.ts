/**
 * The lines of a rewrap campaign: an input line is a JSON string (the wrapped key) or an object with
 * `wrappedKey`, optional `context` and any other fields; its output line is the same with `wrappedKey`
 * replaced by the result and `"rewrapped": true|false`, or `"error": {code, detail}` when it failed.
 * A blank line stays blank, so that output line N always answers input line N.
 */
import type { BatchRewrapItem, ItemProblem } from '../keywrap-client.js'

export type InputLine =
  | { readonly kind: 'blank'; readonly text: string }
  | { readonly kind: 'invalid'; readonly text: string; readonly problem: ItemProblem }
  | { readonly kind: 'key'; readonly item: BatchRewrapItem; readonly fields: Readonly<Record<string, unknown>> | undefined }

export function parseInputLine(text: string): InputLine {
  if (text.trim() === '') return { kind: 'blank', text }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return invalid(text, 'the line is not JSON')
  }
  if (typeof value === 'string') return { kind: 'key', item: { wrappedKey: value }, fields: undefined }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return invalid(text, 'the line is neither a JSON string nor an object')
  const fields = value as Record<string, unknown>
  if (typeof fields.wrappedKey !== 'string') return invalid(text, 'the object has no string "wrappedKey"')
  const item = fields.context === undefined ? { wrappedKey: fields.wrappedKey } : { wrappedKey: fields.wrappedKey, context: fields.context }
  return { kind: 'key', item, fields }
}

function invalid(text: string, detail: string): InputLine {
  return { kind: 'invalid', text, problem: { code: 'invalid_line', detail } }
}

export type LineOutcome = { readonly wrappedKey: string; readonly rewrapped: boolean } | { readonly error: ItemProblem }

/** The output line of `line`, newline included. */
export function outputLine(line: InputLine, outcome?: LineOutcome): string {
  if (line.kind === 'blank') return `${line.text}\n`
  if (line.kind === 'invalid') return `${JSON.stringify({ input: line.text, rewrapped: false, error: line.problem })}\n`
  const fields: Record<string, unknown> = line.fields ? { ...line.fields } : { wrappedKey: line.item.wrappedKey }
  if (!outcome || 'error' in outcome) {
    fields.rewrapped = false
    fields.error = outcome?.error ?? { code: 'not_attempted', detail: 'the run stopped before this item' }
  } else {
    fields.wrappedKey = outcome.wrappedKey
    fields.rewrapped = outcome.rewrapped
    delete fields.error
  }
  return `${JSON.stringify(fields)}\n`
}
