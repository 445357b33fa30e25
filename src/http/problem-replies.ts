/**
 * One place turns every failure into RFC 9457 problem+json: keywrap's own errors, Fastify's validation
 * and body-parsing errors, unknown routes, and anything unexpected (logged, answered as a bare 500).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { isKeywrapError, KeywrapError, toProblem, type ProblemFieldError } from '../errors.js'
import { truncate } from '../support/truncate.js'

// JSON bodies are parsed by json-body.ts, whose errors say where the JSON is wrong; this is for a
// SyntaxError from anywhere else.
const INVALID_JSON = 'The body is not valid JSON.'

const FASTIFY_CODES: Readonly<Record<string, (request: FastifyRequest) => KeywrapError>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: (request) =>
    new KeywrapError(
      'payload_too_large',
      `The body is larger than this service accepts: at most ${request.routeOptions.bodyLimit} bytes (KEYWRAP_BODY_LIMIT_BYTES).`,
    ),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new KeywrapError('unsupported_media_type'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new KeywrapError('invalid_request', 'The body is empty; send a JSON object.'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new KeywrapError('invalid_request', INVALID_JSON),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => new KeywrapError('invalid_request', 'Content-Length does not match the body.'),
  FST_ERR_CTP_INVALID_TYPE: () => new KeywrapError('unsupported_media_type'),
}

function problemReplies(app: FastifyInstance, _options: object, done: () => void): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const problem = asKeywrapError(error, request)
    if (problem.status >= 500) {
      request.log.error({ err: problem.cause ?? error, code: problem.code }, 'request failed')
    }
    return sendProblem(request, reply, problem)
  })

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? request.url
    const otherMethods = ['GET', 'POST'].filter((method) => method !== request.method)
    if (otherMethods.some((method) => app.findRoute({ method, url: path }) !== null)) {
      return sendProblem(request, reply, new KeywrapError('method_not_allowed', `${request.method} is not accepted here.`))
    }
    return sendProblem(request, reply, new KeywrapError('not_found', `Nothing is at ${request.method} ${path}.`))
  })
  done()
}

export default fp(problemReplies, { name: 'problem-replies' })

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: KeywrapError): FastifyReply {
  if (error.code === 'unauthenticated') {
    const hasToken = request.headers.authorization !== undefined
    reply.header(
      'www-authenticate',
      hasToken ? `Bearer realm="keywrap", error="invalid_token", error_description="${errorDescription(error)}"` : 'Bearer realm="keywrap"',
    )
  }
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds))
  return reply
    .code(error.status)
    .header('cache-control', 'no-store')
    .type('application/problem+json')
    .serializer(JSON.stringify)
    .send(toProblem(error, request.id))
}

/** The problem's detail in the characters RFC 6750 allows in error_description (printable ASCII but " and \\). */
function errorDescription(error: KeywrapError): string {
  return (error.detail ?? error.message).replace(/"/g, "'").replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?')
}

/** Any error a request ends with, as the problem its reply carries. */
export function asKeywrapError(error: FastifyError, request: FastifyRequest): KeywrapError {
  if (isKeywrapError(error)) return error
  if (error.validation) return invalidRequest(`/${error.validationContext ?? 'body'}`, error.validation)
  const mapped = error.code ? FASTIFY_CODES[error.code] : undefined
  if (mapped) return mapped(request)
  if (error instanceof SyntaxError) return new KeywrapError('invalid_request', INVALID_JSON)
  if (error.statusCode === 413) return FASTIFY_CODES.FST_ERR_CTP_BODY_TOO_LARGE!(request)
  if (error.statusCode === 415) return new KeywrapError('unsupported_media_type')
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new KeywrapError('invalid_request', 'The request is not valid HTTP for this service.')
  }
  return new KeywrapError('internal', undefined, { cause: error })
}

export interface ValidationIssue {
  readonly keyword: string
  readonly instancePath: string
  readonly params: Record<string, unknown>
  readonly message?: string | undefined
}

/** Issues listed in one 400, and the longest pointer shown: its body stays small whatever the request. */
const MAX_ISSUES = 5
const MAX_POINTER = 200

/**
 * Schema-validation issues (Ajv's) as one invalid_request, each issue named
 * by a JSON pointer under `prefix`; a pointer names what the client sent, so it is cut short.
 */
export function invalidRequest(prefix: string, issues: readonly ValidationIssue[]): KeywrapError {
  const errors: ProblemFieldError[] = issues.slice(0, MAX_ISSUES).map((issue) => ({
    pointer: truncate(`${prefix}${issue.instancePath}${missingPropertySuffix(issue.params)}`, MAX_POINTER),
    detail: describeIssue(issue.keyword, issue.params, issue.message),
  }))
  return new KeywrapError('invalid_request', errors.map((e) => `${e.pointer} ${e.detail}`).join('; '), { errors })
}

function missingPropertySuffix(params: Record<string, unknown>): string {
  if (typeof params.missingProperty === 'string') return `/${params.missingProperty}`
  if (typeof params.additionalProperty === 'string') return `/${params.additionalProperty}`
  if (typeof params.propertyName === 'string') return `/${params.propertyName}`
  return ''
}

function describeIssue(keyword: string, params: Record<string, unknown>, message: string | undefined): string {
  switch (keyword) {
    case 'additionalProperties':
      return 'is not a known field'
    case 'required':
      return 'is required'
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
    case 'pattern':
      return 'has the wrong format'
    default:
      return message ?? 'is not valid'
  }
}
