/** Request logs (pino) as Cloud Logging reads them: `severity`, `message`, an RFC 3339 `time`. */
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'

const SEVERITY: Readonly<Record<string, string>> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
}

/** `stream`: the writer the audit sink shares (src/support/stdout-lines), so lines never interleave. */
export function requestLoggerOptions(level: string, stream: { write(line: string): unknown }): FastifyServerOptions['logger'] {
  return {
    level,
    stream,
    messageKey: 'message',
    base: undefined,
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
    redact: { paths: ['req.headers.authorization', 'req.headers["x-serverless-authorization"]'], remove: true },
  }
}

type LogArguments = Parameters<FastifyBaseLogger['info']>
type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>

/**
 * A request's logger, made when the request first logs. Fastify gives every request a pino child
 * (its bindings, the request id, serialised at once), about 5 % of the CPU of an L1-hit unwrap,
 * while only refusals and failures log at the default level.
 */
export class LazyChildLogger implements FastifyBaseLogger {
  private made: FastifyBaseLogger | undefined

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  get level(): string {
    return this.options.level ?? this.parent.level
  }

  set level(level: string) {
    this.real().level = level
  }

  /** The parent's answer while the child has not changed its level (pino's isLevelEnabled). */
  isLevelEnabled(level: string): boolean {
    const logger = (this.made ?? (this.options.level === undefined ? this.parent : this.real())) as FastifyBaseLogger & { isLevelEnabled?(level: string): boolean }
    return logger.isLevelEnabled?.(level) ?? true
  }

  fatal(...args: LogArguments): void {
    this.real().fatal(...args)
  }

  error(...args: LogArguments): void {
    this.real().error(...args)
  }

  warn(...args: LogArguments): void {
    this.real().warn(...args)
  }

  info(...args: LogArguments): void {
    this.real().info(...args)
  }

  debug(...args: LogArguments): void {
    this.real().debug(...args)
  }

  trace(...args: LogArguments): void {
    this.real().trace(...args)
  }

  silent(...args: LogArguments): void {
    this.real().silent(...args)
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real().child(bindings, options)
  }

  private real(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.options))
  }
}

export function lazyChildLoggerFactory(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChildLogger(logger, bindings, options)
}
