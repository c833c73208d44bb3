#!/usr/bin/env node
// jobprogress-proxy [--help] [--version] [--port 8080 --cache-ttl-seconds 30 ...]
// Every setting is an environment variable (docs/contract.md); a flag --name-in-kebab-case overrides it.
import { DEFAULTS } from './config.js'
import { VERSION } from './version.js'
import { main } from './server.js'

const SETTINGS: Array<[string, string]> = [
  ['JOBPROGRESS_TOKEN', 'the JobProgress access token (required, or the file below); never logged'],
  ['JOBPROGRESS_TOKEN_FILE', 'a file holding the token (Docker/Kubernetes secrets); re-read on SIGHUP'],
  ['JOBPROGRESS_API_URL', 'upstream base URL, including /api/v3'],
  ['HOST', 'listen address'],
  ['PORT', 'listen port'],
  ['PUBLIC_URL', 'the URL clients use to reach the proxy, without /api/v3; pagination links point there'],
  ['ALLOWED_HOSTS', 'extra Host names accepted, comma-separated (loopback names and HOST always are)'],
  ['PROXY_API_KEYS', 'comma-separated client keys, each "key" or "name:key"; empty: no client auth'],
  ['ADMIN_KEY', 'key for DELETE /_proxy/cache; empty: admin actions disabled'],
  ['AUDIT_LOG', 'file receiving one JSON line per write (reopened on SIGHUP); empty: the main log, "audit":true'],
  ['CLIENT_BUDGET_SHARES', "name=percent,...: the most of each window's budget a client key may spend, e.g. batch=20"],
  ['CACHE_TTL_SECONDS', 'how long a cached GET is fresh'],
  ['CACHE_STALE_SECONDS', 'how long after that it may be served stale'],
  ['CACHE_MAX_BYTES', "bound on the cache's size, bodies and headers"],
  ['CACHE_RULES', 'per-path TTLs and eviction links, e.g. /workflow/stages=3600,/jobs/notes/*>/jobs/*/notes'],
  ['CACHE_DIR', 'where the cache and the spent budget survive restarts; empty: memory only'],
  ['UPSTREAM_RATE_LIMIT', 'upstream calls allowed per window'],
  ['UPSTREAM_RATE_WINDOW_MS', 'the window of that limit'],
  ['UPSTREAM_MAX_CONCURRENT', 'upstream calls in flight at once'],
  ['UPSTREAM_TIMEOUT_MS', "one upstream call's limit (504 past it)"],
  ['QUEUE_MAX', 'calls that may wait for the budget (503 QUEUE_FULL past it)'],
  ['QUEUE_TIMEOUT_MS', 'longest wait for the budget (503 QUEUE_TIMEOUT past it)'],
  ['BODY_LIMIT_BYTES', 'largest request body (413 past it)'],
  ['SHUTDOWN_DELAY_MS', 'on SIGTERM, keep serving this long with /readyz at 503 before closing'],
  ['REDIS_URL', 'distributed mode (several replicas, one budget and cache)'],
  ['LOG_LEVEL', 'fatal, error, warn, info, debug, trace or silent'],
]

function help(): string {
  const rows = SETTINGS.map(([name, what]) => {
    const flag = '--' + name.toLowerCase().replace(/_/g, '-')
    const def = (DEFAULTS as Record<string, string>)[name]
    return `  ${flag.padEnd(28)} ${name.padEnd(26)} ${what}${def !== undefined ? ` (default ${def})` : ''}`
  })
  return `jobprogress-proxy ${VERSION}: a caching, rate-limiting proxy for the JobProgress API

Usage: jobprogress-proxy [flags]

Every setting is read from the environment; a flag overrides its variable.
  flag                         variable                   meaning
${rows.join('\n')}
  --help, --version

Example:
  JOBPROGRESS_TOKEN=eyJ0eXAi... jobprogress-proxy --port 8080
`
}

const args = process.argv.slice(2)
const env = { ...process.env }
const known = new Set(SETTINGS.map(([n]) => n))
for (let i = 0; i < args.length; i++) {
  const a = args[i]!
  if (a === '--help' || a === '-h') {
    process.stdout.write(help())
    process.exit(0)
  }
  if (a === '--version' || a === '-v') {
    process.stdout.write(`${VERSION}\n`)
    process.exit(0)
  }
  const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(a)
  const name = m?.[1]?.toUpperCase().replace(/-/g, '_')
  if (!m || !name || !known.has(name)) {
    process.stderr.write(`jobprogress-proxy: unknown argument ${a} (see --help)\n`)
    process.exit(1)
  }
  const value = m[2] ?? args[++i]
  if (value === undefined) {
    process.stderr.write(`jobprogress-proxy: ${a} needs a value\n`)
    process.exit(1)
  }
  env[name] = value
}
main(env).catch((err: unknown) => {
  process.stderr.write(`jobprogress-proxy: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
