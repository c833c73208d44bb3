// Prometheus metrics: the names and labels of docs/contract.md, one registry per app.
import client from 'prom-client'
import type { HttpCache } from './cache/http-cache.js'
import type { Upstream } from './upstream/client.js'

export interface Metrics {
  registry: client.Registry
  requests: client.Counter<'method' | 'status'>
  cacheRequests: client.Counter<'result'>
  /** by client key name; only used when PROXY_API_KEYS is set (names are few and configured) */
  clientRequests: client.Counter<'client'>
  /** API requests by JobProgress resource (a fixed list, else "other") and cache result */
  resourceRequests: client.Counter<'resource' | 'result'>
}

/** JobProgress's top-level resources (docs/jobprogress.md): label values never come from the client as is. */
const RESOURCES = new Set(['customers', 'jobs', 'job', 'company', 'workflow', 'countries', 'referrals', 'divisions', 'appointments', 'prospects', 'resources'])

/** The resource label for a path under /api/v3: its first segment when known, else "other". */
export function resourceOf(rawPath: string): string {
  const first = rawPath.split('/', 2)[1] ?? ''
  return RESOURCES.has(first) ? first : 'other'
}

export function createMetrics(cache: HttpCache, upstream: Upstream, limit: number): Metrics {
  const registry = new client.Registry()
  client.collectDefaultMetrics({ register: registry })
  const requests = new client.Counter({
    name: 'jobprogress_proxy_requests_total',
    help: 'Client requests answered',
    labelNames: ['method', 'status'] as const,
    registers: [registry],
  })
  const cacheRequests = new client.Counter({
    name: 'jobprogress_proxy_cache_requests_total',
    help: 'Cacheable requests by result',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  for (const result of ['hit', 'miss', 'stale', 'bypass']) cacheRequests.inc({ result }, 0)
  const resourceRequests = new client.Counter({
    name: 'jobprogress_proxy_resource_requests_total',
    help: 'API requests by JobProgress resource and cache result (write: not a GET; none: answered before the cache, e.g. 401)',
    labelNames: ['resource', 'result'] as const,
    registers: [registry],
  })
  const clientRequests = new client.Counter({
    name: 'jobprogress_proxy_client_requests_total',
    help: 'API requests answered, by client key name (with PROXY_API_KEYS)',
    labelNames: ['client'] as const,
    registers: [registry],
  })
  new client.Gauge({
    name: 'jobprogress_proxy_cache_bytes',
    help: 'Bytes held by the cache (bodies and headers)',
    registers: [registry],
    collect() {
      this.set(cache.store.bytes)
    },
  })
  new client.Gauge({
    name: 'jobprogress_proxy_cache_entries',
    help: 'Entries held by the cache',
    registers: [registry],
    collect() {
      this.set(cache.store.entries)
    },
  })
  const leverDisabled = new client.Counter({
    name: 'jobprogress_proxy_cache_lever_disabled_total',
    help: 'Resource-aware levers turned off for a route pattern because a check against real answers failed',
    labelNames: ['lever', 'route'] as const,
    registers: [registry],
  })
  // route patterns are bounded by the verifier (at most 1000)
  cache.resources.onDisabled = (lever, route) => leverDisabled.inc({ lever, route })
  const upstreamRequests = new client.Counter({
    name: 'jobprogress_proxy_upstream_requests_total',
    help: 'Calls made upstream, by status (or timeout, error)',
    labelNames: ['status'] as const,
    registers: [registry],
  })
  const throttled = new client.Counter({
    name: 'jobprogress_proxy_upstream_throttled_total',
    help: '429s (and legacy throttle 500s) received from upstream and absorbed',
    registers: [registry],
  })
  const duration = new client.Histogram({
    name: 'jobprogress_proxy_upstream_duration_seconds',
    help: 'Time to the upstream answer headers',
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  })
  new client.Gauge({
    name: 'jobprogress_proxy_queue_depth',
    help: 'Calls waiting for the limiter',
    registers: [registry],
    collect() {
      this.set(upstream.throttle.depth)
    },
  })
  new client.Gauge({
    name: 'jobprogress_proxy_upstream_budget_remaining',
    help: 'Upstream calls left in the current window',
    registers: [registry],
    async collect() {
      this.set(await upstream.throttle.budgetLeft())
    },
  })
  new client.Gauge({
    name: 'jobprogress_proxy_upstream_budget_limit',
    help: 'UPSTREAM_RATE_LIMIT',
    registers: [registry],
    collect() {
      this.set(limit)
    },
  })
  const wait = new client.Histogram({
    name: 'jobprogress_proxy_queue_wait_seconds',
    help: 'Time a call waited for the upstream budget',
    buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 15, 30, 60],
    registers: [registry],
  })
  upstream.throttle.onWait = (seconds) => wait.observe(seconds)
  new client.Gauge({
    name: 'jobprogress_proxy_token_expiry_timestamp_seconds',
    help: "The token's JWT exp claim (0 when the token carries none)",
    registers: [registry],
    collect() {
      this.set(upstream.tokenExpiresAt ? upstream.tokenExpiresAt.getTime() / 1000 : 0)
    },
  })
  new client.Gauge({
    name: 'jobprogress_proxy_upstream_unauthorized',
    help: '401s received from JobProgress since start (the token was revoked or expired)',
    registers: [registry],
    collect() {
      this.set(upstream.unauthorized)
    },
  })
  upstream.onAnswer = (status, seconds) => {
    upstreamRequests.inc({ status })
    duration.observe(seconds)
  }
  upstream.onThrottled = () => throttled.inc()
  return { registry, requests, cacheRequests, clientRequests, resourceRequests }
}
