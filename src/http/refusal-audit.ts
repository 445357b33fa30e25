/**
 * Every refusal on a key route is audited: a request refused before it reached a key (401 with the
 * token's reason, 400, 413, 415, the failed-authentication 429) gets an entry with the operation of its
 * route, the alias, the client address and outcome `denied` or `failed`. Refusals a key access already
 * recorded (403, 422, …) and those the failed-authentication limit only counts are skipped.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AuthFailure } from '../auth/authenticator.js'
import { wasAudited, type KeyService, type RefusedRequest } from '../keys/key-service.js'
import { isKeyAccess, type KeyAccessEntry } from '../operations.js'
import { requestOf } from './authentication.js'
import { isUnrecordedRefusal } from './failed-authentications.js'
import { asKeywrapError } from './problem-replies.js'

/** What an entry about a refused request names. */
export interface RefusalSubject {
  readonly refused: RefusedRequest
  readonly alias: string
  readonly operation: KeyAccessEntry
}

export function refusalSubjectOf(request: FastifyRequest): RefusalSubject | undefined {
  const operation = request.routeOptions.config.operation
  const alias = (request.params as { alias?: unknown } | undefined)?.alias
  if (!operation || !isKeyAccess(operation) || typeof alias !== 'string') return undefined
  return { operation, alias, refused: { principal: request.principal, ...requestOf(request) } }
}

function refusalAudit(app: FastifyInstance, { keys }: { readonly keys: KeyService }, done: () => void): void {
  app.addHook('onError', (request, _reply, error, hookDone) => {
    const subject = refusalSubjectOf(request)
    if (subject && !wasAudited(error) && !isUnrecordedRefusal(error)) {
      const refusal = asKeywrapError(error, request)
      const failure = refusal.cause instanceof AuthFailure ? refusal.cause : undefined
      const issuer = failure?.claimedIssuer
      void keys.recordRefusal(subject.refused, subject.alias, subject.operation, refusal, {
        ...(failure && { reason: `bearer token refused: ${failure.reason}` }),
        ...(issuer !== undefined && { claimedIssuer: issuer }),
      })
    }
    hookDone()
  })
  done()
}

export default fp(refusalAudit, { name: 'refusal-audit' })
