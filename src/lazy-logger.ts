// Fastify makes a child logger (pino.child: bindings serialised, levels set up) for every request,
// though most requests on the hit path never write a line. This one makes it on the first line
// actually written at an enabled level.
import type { FastifyBaseLogger } from 'fastify'

type Bindings = Record<string, unknown>
type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

class LazyChild {
  #parent: FastifyBaseLogger & { isLevelEnabled(level: string): boolean }
  #bindings: Bindings
  #opts: object
  #child: FastifyBaseLogger | undefined

  constructor(parent: FastifyBaseLogger & { isLevelEnabled(level: string): boolean }, bindings: Bindings, opts: object) {
    this.#parent = parent
    this.#bindings = bindings
    this.#opts = opts
  }

  #real(): FastifyBaseLogger {
    return (this.#child ??= this.#parent.child(this.#bindings, this.#opts))
  }

  #log(level: Level, args: unknown[]): void {
    if (!this.#child && !this.#parent.isLevelEnabled(level)) return
    ;(this.#real()[level] as (...a: unknown[]) => void)(...args)
  }

  get level(): string {
    return this.#child?.level ?? this.#parent.level
  }

  set level(l: string) {
    this.#real().level = l
  }

  isLevelEnabled(level: string): boolean {
    return this.#child ? (this.#child as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled(level) : this.#parent.isLevelEnabled(level)
  }

  fatal(...a: unknown[]): void {
    this.#log('fatal', a)
  }
  error(...a: unknown[]): void {
    this.#log('error', a)
  }
  warn(...a: unknown[]): void {
    this.#log('warn', a)
  }
  info(...a: unknown[]): void {
    this.#log('info', a)
  }
  debug(...a: unknown[]): void {
    this.#log('debug', a)
  }
  trace(...a: unknown[]): void {
    this.#log('trace', a)
  }
  silent(): void {}

  child(bindings: Bindings, opts?: object): FastifyBaseLogger {
    return this.#real().child(bindings, opts)
  }
}

/** Fastify's childLoggerFactory option; falls back to a real child for loggers without isLevelEnabled. */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: Bindings, opts: object): FastifyBaseLogger {
  const parent = logger as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }
  if (typeof parent.isLevelEnabled !== 'function') return logger.child(bindings, opts)
  return new LazyChild(parent as FastifyBaseLogger & { isLevelEnabled(level: string): boolean }, bindings, opts) as unknown as FastifyBaseLogger
}

/** Whether `log` writes lines of `level` (a logger without isLevelEnabled: assume it does). */
export function levelEnabled(log: FastifyBaseLogger, level: Level): boolean {
  const l = log as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }
  return l.isLevelEnabled === undefined || l.isLevelEnabled(level)
}
