/**
 * What keywrap's modules log with: the part of pino (Fastify's `app.log`) they use, so the app's
 * logger, a request's logger or the start-up stderr writer can each be given.
 */
export interface Logger {
  debug(details: object, message: string): void
  info(details: object, message: string): void
  warn(details: object, message: string): void
  error(details: object, message: string): void
}
