/**
 * The trace a request belongs to, in the form Cloud Logging correlates with Cloud Trace:
 * `trace` = `projects/PROJECT/traces/TRACE_ID` and `spanId` = 16 hex digits.
 */

export interface TraceContext {
  readonly trace: string
  readonly spanId?: string
}

type Headers = Readonly<Record<string, string | readonly string[] | undefined>>

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const CLOUD_TRACE = /^([0-9a-fA-F]{32})(?:\/(\d{1,20}))?(?:;o=\d+)?$/
const MAX_SPAN = (1n << 64n) - 1n

/**
 * Reads W3C `traceparent`, else `X-Cloud-Trace-Context` (`TRACE_ID/SPAN_ID;o=1`, the span in decimal).
 * Header names as Node gives them (lower case). Undefined when neither header holds a valid trace.
 */
export function parseTraceContext(headers: Headers, projectId: string): TraceContext | undefined {
  const ids = fromTraceparent(first(headers.traceparent)) ?? fromCloudTrace(first(headers['x-cloud-trace-context']))
  if (!ids) return undefined
  const trace = `projects/${projectId}/traces/${ids.traceId}`
  return ids.spanId ? { trace, spanId: ids.spanId } : { trace }
}

interface TraceIds {
  traceId: string
  spanId?: string
}

function fromTraceparent(value: string | undefined): TraceIds | undefined {
  const match = value === undefined ? null : TRACEPARENT.exec(value.trim())
  if (!match) return undefined
  const [, version, traceId, spanId, , rest] = match
  // Version 00 has exactly four fields; later versions may append more, and ff is forbidden.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined
  if (isZero(traceId!) || isZero(spanId!)) return undefined
  return { traceId: traceId!, spanId: spanId! }
}

function fromCloudTrace(value: string | undefined): TraceIds | undefined {
  const match = value === undefined ? null : CLOUD_TRACE.exec(value.trim())
  if (!match) return undefined
  const traceId = match[1]!.toLowerCase()
  if (isZero(traceId)) return undefined
  const span = match[2] === undefined ? 0n : BigInt(match[2])
  if (span === 0n || span > MAX_SPAN) return { traceId }
  return { traceId, spanId: span.toString(16).padStart(16, '0') }
}

function first(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.[0]
}

function isZero(hex: string): boolean {
  return /^0+$/.test(hex)
}
