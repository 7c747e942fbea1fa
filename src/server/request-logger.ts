import type { pino } from 'pino';
import type { Logger } from '../observability/index.js';

/**
 * A request's logger whose pino child (with the request id) is made on the first line actually
 * written. Fastify asks for a child per request; pino's costs about 1 KB and a few hundred
 * nanoseconds, and a request that logs nothing (almost every one: request logging is off by
 * default) never needs it. Disabled levels stay no-ops.
 */
class LazyRequestLogger {
  readonly #parent: Logger;
  readonly #bindings: pino.Bindings;
  readonly #options: pino.ChildLoggerOptions;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: pino.Bindings, options: pino.ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  get level(): string {
    return this.#child?.level ?? this.#options.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.#logger().level = level;
  }

  isLevelEnabled(level: string): boolean {
    return this.#child?.isLevelEnabled(level) ?? this.#logger().isLevelEnabled(level);
  }

  child(bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger {
    return this.#logger().child(bindings, options);
  }

  fatal(...args: unknown[]): void {
    this.#write('fatal', args);
  }

  error(...args: unknown[]): void {
    this.#write('error', args);
  }

  warn(...args: unknown[]): void {
    this.#write('warn', args);
  }

  info(...args: unknown[]): void {
    this.#write('info', args);
  }

  debug(...args: unknown[]): void {
    this.#write('debug', args);
  }

  trace(...args: unknown[]): void {
    this.#write('trace', args);
  }

  silent(): void {}

  #write(level: pino.Level, args: unknown[]): void {
    // A per-route level makes the child differ from the parent: ask the child then.
    if (this.#child === undefined && this.#options.level === undefined && !this.#parent.isLevelEnabled(level))
      return;
    const logger = this.#logger();
    (logger[level] as (...rest: unknown[]) => void).apply(logger, args);
  }

  #logger(): Logger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }
}

/** Fastify's `childLoggerFactory`: a lazy child per request (see LazyRequestLogger). */
export function lazyRequestLogger(
  parent: Logger,
  bindings: pino.Bindings,
  options: pino.ChildLoggerOptions,
): Logger {
  return new LazyRequestLogger(parent, bindings, options) as unknown as Logger;
}
