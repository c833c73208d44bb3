// pino options: JSON lines, secrets redacted wherever they could appear, pretty on a terminal.
import { createRequire } from 'node:module'
import type { LoggerOptions } from 'pino'

/** Paths that could hold a secret, should anything ever log a request, headers or the config. */
export const REDACT = [
  'req.headers.authorization',
  'req.headers["x-proxy-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-proxy-key"]',
  'headers.cookie',
  'authorization',
  'token',
  'adminKey',
  'key',
]

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty')
    return true
  } catch {
    return false
  }
}

export function loggerOptions(level: string): LoggerOptions {
  const pretty = process.stdout.isTTY && prettyAvailable()
  return {
    level,
    redact: { paths: REDACT, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  }
}
