// The environment, read once: every variable of docs/contract.md (and the few this project adds) parsed and
// validated into one frozen, typed object. Nothing else in the proxy reads process.env.
import { closeSync, openSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { z } from 'zod'
import { parseCacheRules, type CacheRules } from './cache/rules.js'
import { parseBudgetShares } from './upstream/accounting.js'

/** A value that must never reach a log, a JSON answer or an error message. */
export class Secret {
  readonly #value: string
  constructor(value: string) {
    this.#value = value
  }
  reveal(): string {
    return this.#value
  }
  toString(): string {
    return '[redacted]'
  }
  toJSON(): string {
    return '[redacted]'
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[redacted]'
  }
}

export interface ClientKey {
  name: string
  key: Secret
}

export interface Config {
  tokenFile: string | undefined
  apiUrl: URL
  host: string
  port: number
  /** PUBLIC_URL without a trailing slash: pagination links become <publicUrl>/api/v3/... */
  publicUrl: string | undefined
  /** ALLOWED_HOSTS, lower-cased: extra Host names accepted (a leading *. matches any subdomain) */
  allowedHosts: readonly string[]
  clientKeys: readonly ClientKey[]
  adminKey: Secret | undefined
  /** AUDIT_LOG: the file of one JSON line per write; undefined: the main log, with "audit":true */
  auditLog: string | undefined
  /** CLIENT_BUDGET_SHARES: the most of each window's budget a client may spend, in percent */
  clientBudgetShares: ReadonlyMap<string, number>
  cacheTtlSeconds: number
  cacheStaleSeconds: number
  cacheMaxBytes: number
  cacheRules: CacheRules
  /** CACHE_DIR, absolute; undefined: memory only */
  cacheDir: string | undefined
  rateLimit: number
  rateWindowMs: number
  maxConcurrent: number
  upstreamTimeoutMs: number
  queueMax: number
  queueTimeoutMs: number
  bodyLimitBytes: number
  redisUrl: string | undefined
  logLevel: string
  shutdownDelayMs: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `expected a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `expected a whole number from ${min} to ${max}`).max(max, `expected a whole number from ${min} to ${max}`))

const optional = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v ? v : undefined))

const httpUrl = z
  .string()
  .trim()
  .refine((v) => {
    try {
      const u = new URL(v)
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.search && !u.hash && !u.username
    } catch {
      return false
    }
  }, 'expected an http(s) URL without query, fragment or credentials, e.g. https://api.jobprogress.com/api/v3')

function isPublicUrl(v: string): boolean {
  try {
    const u = new URL(v)
    return (u.protocol === 'http:' || u.protocol === 'https:') && !u.search && !u.hash && !u.username && !u.password && !/\/api\/v3\/?$/.test(u.pathname)
  } catch {
    return false
  }
}

// a DNS name (a leading *. for any subdomain), an IPv4 address, or an IPv6 address in brackets; no port
const HOST_NAME = /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$|^\[[0-9a-f:.]+\]$/

function parseAllowedHosts(raw: string | undefined): string[] {
  if (!raw) return []
  return raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
    .map((h, i) => {
      if (!HOST_NAME.test(h)) {
        throw new ConfigError(`ALLOWED_HOSTS: entry ${i + 1} is not a host name (expected names such as proxy or jp-proxy.internal, *.internal for any subdomain; no scheme, port or path)`)
      }
      return h.replace(/\.$/, '')
    })
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const DEFAULTS = {
  JOBPROGRESS_API_URL: 'https://api.jobprogress.com/api/v3',
  HOST: '127.0.0.1',
  PORT: '8080',
  CACHE_TTL_SECONDS: '60',
  CACHE_STALE_SECONDS: '600',
  CACHE_MAX_BYTES: '67108864',
  CACHE_DIR: '.jobprogress-proxy',
  UPSTREAM_RATE_LIMIT: '60',
  UPSTREAM_RATE_WINDOW_MS: '60000',
  UPSTREAM_MAX_CONCURRENT: '4',
  UPSTREAM_TIMEOUT_MS: '30000',
  QUEUE_MAX: '1000',
  QUEUE_TIMEOUT_MS: '60000',
  BODY_LIMIT_BYTES: '26214400',
  SHUTDOWN_DELAY_MS: '0',
  LOG_LEVEL: 'info',
} as const

const schema = z.object({
  JOBPROGRESS_TOKEN: optional,
  JOBPROGRESS_TOKEN_FILE: optional,
  JOBPROGRESS_API_URL: httpUrl.default(DEFAULTS.JOBPROGRESS_API_URL),
  HOST: z.string().trim().min(1, 'expected a listen address').default(DEFAULTS.HOST),
  PORT: int(0, 65535).default(Number(DEFAULTS.PORT)),
  PUBLIC_URL: optional.refine(
    (v) => v === undefined || isPublicUrl(v),
    'expected the http(s) URL clients use to reach the proxy, without /api/v3, query, fragment or credentials, e.g. https://jp-proxy.internal',
  ),
  ALLOWED_HOSTS: optional,
  PROXY_API_KEYS: optional,
  ADMIN_KEY: optional,
  AUDIT_LOG: optional,
  CLIENT_BUDGET_SHARES: optional,
  CACHE_TTL_SECONDS: int(0).default(Number(DEFAULTS.CACHE_TTL_SECONDS)),
  CACHE_STALE_SECONDS: int(0).default(Number(DEFAULTS.CACHE_STALE_SECONDS)),
  CACHE_MAX_BYTES: int(1024).default(Number(DEFAULTS.CACHE_MAX_BYTES)),
  CACHE_RULES: optional,
  CACHE_DIR: z.string().trim().default(DEFAULTS.CACHE_DIR),
  UPSTREAM_RATE_LIMIT: int(1).default(Number(DEFAULTS.UPSTREAM_RATE_LIMIT)),
  UPSTREAM_RATE_WINDOW_MS: int(1).default(Number(DEFAULTS.UPSTREAM_RATE_WINDOW_MS)),
  UPSTREAM_MAX_CONCURRENT: int(1).default(Number(DEFAULTS.UPSTREAM_MAX_CONCURRENT)),
  UPSTREAM_TIMEOUT_MS: int(1).default(Number(DEFAULTS.UPSTREAM_TIMEOUT_MS)),
  QUEUE_MAX: int(0).default(Number(DEFAULTS.QUEUE_MAX)),
  QUEUE_TIMEOUT_MS: int(1).default(Number(DEFAULTS.QUEUE_TIMEOUT_MS)),
  BODY_LIMIT_BYTES: int(1).default(Number(DEFAULTS.BODY_LIMIT_BYTES)),
  SHUTDOWN_DELAY_MS: int(0, 8000).default(Number(DEFAULTS.SHUTDOWN_DELAY_MS)),
  REDIS_URL: optional.refine((v) => v === undefined || /^rediss?:\/\//.test(v), 'expected redis:// or rediss:// URL'),
  LOG_LEVEL: z.enum(LOG_LEVELS, { message: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
})

function parseClientKeys(raw: string | undefined): ClientKey[] {
  if (!raw) return []
  const keys = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  return keys.map((item, i) => {
    const colon = item.indexOf(':')
    const name = colon > 0 ? item.slice(0, colon) : `client${i + 1}`
    const key = colon > 0 ? item.slice(colon + 1) : item
    if (!key) throw new ConfigError(`PROXY_API_KEYS: entry ${i + 1} has an empty key (expected key or name:key)`)
    if (!/^[\w.-]{1,64}$/.test(name)) {
      throw new ConfigError(`PROXY_API_KEYS: entry ${i + 1} has an invalid name (expected letters, digits, . _ -)`)
    }
    return { name, key: new Secret(key) }
  })
}

/** Reads the token from JOBPROGRESS_TOKEN_FILE, or JOBPROGRESS_TOKEN. */
export function readToken(env: NodeJS.ProcessEnv, tokenFile?: string): Secret {
  if (tokenFile) {
    let text: string
    try {
      text = readFileSync(tokenFile, 'utf8')
    } catch (err) {
      throw new ConfigError(`JOBPROGRESS_TOKEN_FILE: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    const token = text.trim()
    if (!token) throw new ConfigError('JOBPROGRESS_TOKEN_FILE: the file is empty (expected the access token)')
    checkToken(token, 'JOBPROGRESS_TOKEN_FILE')
    return new Secret(token)
  }
  const token = env.JOBPROGRESS_TOKEN?.trim()
  if (!token) {
    throw new ConfigError('JOBPROGRESS_TOKEN: required (the JobProgress access token), or set JOBPROGRESS_TOKEN_FILE')
  }
  checkToken(token, 'JOBPROGRESS_TOKEN')
  return new Secret(token)
}

function checkToken(token: string, name: string): void {
  // It goes into an HTTP header: no control characters or spaces.
  if (!/^[\x21-\x7e]+$/.test(token)) throw new ConfigError(`${name}: expected a token of printable characters without spaces`)
}

export interface LoadedConfig {
  config: Readonly<Config>
  token: Secret
}

/** Parses and validates the environment. Throws ConfigError with one line naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const parsed = schema.safeParse(env)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const name = String(issue.path[0] ?? 'environment')
    throw new ConfigError(`${name}: ${issue.message}`)
  }
  const e = parsed.data
  const token = readToken(env, e.JOBPROGRESS_TOKEN_FILE)
  let cacheRules: CacheRules
  try {
    cacheRules = parseCacheRules(e.CACHE_RULES ?? '')
  } catch (err) {
    throw new ConfigError(`CACHE_RULES: ${(err as Error).message}`)
  }
  const apiUrl = new URL(e.JOBPROGRESS_API_URL.replace(/\/+$/, ''))
  const clientKeys = Object.freeze(parseClientKeys(e.PROXY_API_KEYS))
  let clientBudgetShares: ReadonlyMap<string, number>
  try {
    clientBudgetShares = parseBudgetShares(
      e.CLIENT_BUDGET_SHARES,
      clientKeys.map((k) => k.name),
    )
  } catch (err) {
    throw new ConfigError(`CLIENT_BUDGET_SHARES: ${(err as Error).message}`)
  }
  if (e.AUDIT_LOG) {
    // opened for appending now, so that a path the proxy cannot write stops it here with one line
    try {
      closeSync(openSync(e.AUDIT_LOG, 'a', 0o640))
    } catch (err) {
      throw new ConfigError(`AUDIT_LOG: cannot open the file for appending (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
  const config: Config = {
    tokenFile: e.JOBPROGRESS_TOKEN_FILE,
    apiUrl,
    host: e.HOST,
    port: e.PORT,
    publicUrl: e.PUBLIC_URL?.replace(/\/+$/, ''),
    allowedHosts: Object.freeze(parseAllowedHosts(e.ALLOWED_HOSTS)),
    clientKeys,
    adminKey: e.ADMIN_KEY ? new Secret(e.ADMIN_KEY) : undefined,
    auditLog: e.AUDIT_LOG,
    clientBudgetShares,
    cacheTtlSeconds: e.CACHE_TTL_SECONDS,
    cacheStaleSeconds: e.CACHE_STALE_SECONDS,
    cacheMaxBytes: e.CACHE_MAX_BYTES,
    cacheRules,
    cacheDir: e.CACHE_DIR ? resolve(e.CACHE_DIR) : undefined,
    rateLimit: e.UPSTREAM_RATE_LIMIT,
    rateWindowMs: e.UPSTREAM_RATE_WINDOW_MS,
    maxConcurrent: e.UPSTREAM_MAX_CONCURRENT,
    upstreamTimeoutMs: e.UPSTREAM_TIMEOUT_MS,
    queueMax: e.QUEUE_MAX,
    queueTimeoutMs: e.QUEUE_TIMEOUT_MS,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    redisUrl: e.REDIS_URL,
    logLevel: e.LOG_LEVEL,
    shutdownDelayMs: e.SHUTDOWN_DELAY_MS,
  }
  return { config: Object.freeze(config), token }
}
