/**
 * KEYWRAP_* variables keywrap does not read: almost always a misspelling of one it does, whose default
 * then silently applies. Named in one warning at start, with the setting each most likely meant.
 */
import { ENVIRONMENT_SETTINGS } from './load-config.js'

const KNOWN: readonly string[] = Object.keys(ENVIRONMENT_SETTINGS)

export interface UnknownSetting {
  readonly name: string
  /** The known setting within a few edits of it, if any. */
  readonly didYouMean?: string
}

export function unknownSettings(env: NodeJS.ProcessEnv): UnknownSetting[] {
  return Object.keys(env)
    .filter((name) => name.startsWith('KEYWRAP_') && !KNOWN.includes(name))
    .sort()
    .map((name) => {
      const didYouMean = nearest(name)
      return didYouMean ? { name, didYouMean } : { name }
    })
}

/** The warning's text, or undefined when every KEYWRAP_* variable is known. */
export function unknownSettingsWarning(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const unknown = unknownSettings(env)
  if (unknown.length === 0) return undefined
  const named = unknown.map((setting) => (setting.didYouMean ? `${setting.name} (did you mean ${setting.didYouMean}?)` : setting.name))
  return `keywrap does not read ${named.join(', ')}; ${unknown.length === 1 ? 'it is' : 'they are'} ignored (the settings are listed in the README)`
}

function nearest(name: string): string | undefined {
  const limit = Math.max(2, Math.floor(name.length / 6))
  let best: { name: string; distance: number } | undefined
  for (const known of KNOWN) {
    const distance = editDistance(name, known)
    if (distance <= limit && (!best || distance < best.distance)) best = { name: known, distance }
  }
  return best?.name
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}
