/** KEYWRAP_AUDIT_SINK's values, apart from the sinks so that validating settings loads none of them. */

export type AuditSinkSetting = { kind: 'stdout' } | { kind: 'file'; path: string } | { kind: 'cloud-logging' }

export const AUDIT_SINK_KINDS = 'stdout, file:PATH or cloud-logging'

/** For config validation; on error, the text completes `KEYWRAP_AUDIT_SINK="VALUE" …`. */
export function parseAuditSinkSetting(value: string | undefined): AuditSinkSetting | { error: string } {
  const text = value?.trim() ?? ''
  if (text === '' || text === 'stdout') return { kind: 'stdout' }
  if (text === 'cloud-logging') return { kind: 'cloud-logging' }
  if (text.startsWith('file:')) {
    // file:PATH, or the URL form file:///PATH
    const path = text.startsWith('file://') ? (text.startsWith('file:///') ? text.slice('file://'.length) : undefined) : text.slice('file:'.length)
    if (path === undefined) return { error: 'must name a local file: file:PATH or file:///PATH' }
    if (path === '' || path.includes('\0')) return { error: 'must name a file after "file:"' }
    return { kind: 'file', path }
  }
  return { error: `must be ${AUDIT_SINK_KINDS}` }
}
