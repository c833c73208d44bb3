// Who spends the budget: per-client figures (requests, hits, upstream calls, queue waits, 503s),
// the metric jobprogress_proxy_client_upstream_calls_total{client}, and the last 15 minutes of
// upstream calls by client and by route for the dashboard (GET /_proxy/usage).
// A client is its key's name (PROXY_API_KEYS), or "anonymous" without keys. A call counts for the
// client whose request caused it: its misses and writes, and the refreshes its requests started.
import client from 'prom-client'
import type { FastifyInstance } from 'fastify'
import type { Answers } from './answers.js'
import type { Config } from './config.js'
import { QueueFull, QueueTimeout, ShuttingDown } from './errors.js'
import type { Metrics } from './metrics.js'
import { ANONYMOUS } from './upstream/accounting.js'
import type { Upstream } from './upstream/client.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** whose budget this request spends: its key's name, or "anonymous" without keys; '' before auth */
    account: string
  }
  interface FastifyInstance {
    clients: ClientAccounting
  }
}

export const USAGE_SPAN_MS = 15 * 60_000
const BUCKET_MS = 30_000
const MAX_ROUTES_PER_BUCKET = 200
const TOP = 10

/**
 * A route for a path under /api/v3: segments that look like route words stay, anything else (ids,
 * numbers, names, encoded text) becomes {id}. `/jobs/11/notes` -> `/jobs/{id}/notes`. No data, bounded.
 */
export function routeOf(rawPath: string): string {
  const segs = rawPath.split('/').filter(Boolean).slice(0, 8)
  if (segs.length === 0) return '/'
  return '/' + segs.map((s) => (/^[a-z_][a-z_-]{0,39}$/i.test(s) ? s : '{id}')).join('/')
}

interface Bucket {
  t: number
  clients: Map<string, number>
  routes: Map<string, number>
}

/** Upstream calls in the last 15 minutes, by client and by route, in 30 s buckets. */
export class UsageLog {
  readonly #buckets: Bucket[] = []
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  record(clientName: string, route: string): void {
    const t = Math.floor(this.#now() / BUCKET_MS) * BUCKET_MS
    let b = this.#buckets.at(-1)
    if (!b || b.t !== t) {
      this.#buckets.push((b = { t, clients: new Map(), routes: new Map() }))
      this.#trim()
    }
    b.clients.set(clientName, (b.clients.get(clientName) ?? 0) + 1)
    const r = b.routes.has(route) || b.routes.size < MAX_ROUTES_PER_BUCKET ? route : 'other'
    b.routes.set(r, (b.routes.get(r) ?? 0) + 1)
  }

  /** The clients and routes with the most upstream calls in the last 15 minutes, most first. */
  top(n = TOP): { clients: Array<{ client: string; upstream_calls: number }>; routes: Array<{ route: string; upstream_calls: number }> } {
    this.#trim()
    const clients = new Map<string, number>()
    const routes = new Map<string, number>()
    for (const b of this.#buckets) {
      for (const [k, v] of b.clients) clients.set(k, (clients.get(k) ?? 0) + v)
      for (const [k, v] of b.routes) routes.set(k, (routes.get(k) ?? 0) + v)
    }
    const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, n)
    return {
      clients: sorted(clients).map(([c, v]) => ({ client: c, upstream_calls: v })),
      routes: sorted(routes).map(([r, v]) => ({ route: r, upstream_calls: v })),
    }
  }

  #trim(): void {
    const oldest = this.#now() - USAGE_SPAN_MS
    while (this.#buckets.length && this.#buckets[0]!.t + BUCKET_MS <= oldest) this.#buckets.shift()
  }
}

/** One client in /_proxy/status `clients`. */
export interface ClientStatus {
  /** API requests answered */
  requests: number
  /** answered from the cache: fresh (hits) and stale */
  hits: number
  stale: number
  /** upstream calls its requests caused (misses, writes, refreshes it started, retries) */
  upstream_calls: number
  /** of those, calls that waited for a slot of the budget, and the total wait */
  queue_waits: number
  queue_wait_ms: number
  /** 503s the proxy gave it (QUEUE_FULL, QUEUE_TIMEOUT, SHUTTING_DOWN) */
  rejected_503: number
  /** CLIENT_BUDGET_SHARES: its percent and the calls that makes per window; null without a share */
  share_percent: number | null
  window_cap: number | null
  /** calls it holds in the current window (started, or ended less than a window ago) */
  window_calls: number
}

interface RequestCounts {
  requests: number
  hits: number
  stale: number
  rejected: number
}

/** the 503s a client is counted for */
const rejected = (err: unknown) => err instanceof QueueFull || err instanceof QueueTimeout || err instanceof ShuttingDown

export class ClientAccounting {
  readonly usage: UsageLog
  readonly #names: readonly string[]
  readonly #requests = new Map<string, RequestCounts>()
  readonly #upstream: Upstream

  constructor(names: readonly string[], upstream: Upstream, now?: () => number) {
    this.#names = names
    this.#upstream = upstream
    this.usage = new UsageLog(now)
  }

  counts(name: string): RequestCounts | undefined {
    let c = this.#requests.get(name)
    if (!c && (this.#names.includes(name) || this.#requests.size < 1000)) this.#requests.set(name, (c = { requests: 0, hits: 0, stale: 0, rejected: 0 }))
    return c
  }

  status(): Record<string, ClientStatus> {
    const w = this.#upstream.throttle.clients
    const names = new Set([...this.#names, ...this.#requests.keys(), ...w.use.keys()])
    const out: Record<string, ClientStatus> = {}
    for (const name of [...names].sort()) {
      const r = this.#requests.get(name)
      const u = w.use.get(name)
      out[name] = {
        requests: r?.requests ?? 0,
        hits: r?.hits ?? 0,
        stale: r?.stale ?? 0,
        upstream_calls: u?.calls ?? 0,
        queue_waits: u?.waits ?? 0,
        queue_wait_ms: Math.round(u?.waitMs ?? 0),
        rejected_503: r?.rejected ?? 0,
        share_percent: w.shares.get(name) ?? null,
        window_cap: w.cap(name) ?? null,
        window_calls: w.held(name),
      }
    }
    return out
  }
}

export function registerClients(app: FastifyInstance, o: { config: Readonly<Config>; metrics: Metrics; upstream: Upstream; answers: Answers; now?: () => number }): ClientAccounting {
  const names = o.config.clientKeys.length ? o.config.clientKeys.map((k) => k.name) : [ANONYMOUS]
  const accounting = new ClientAccounting(names, o.upstream, o.now)
  app.decorate('clients', accounting)
  app.decorateRequest('account', '')

  const calls = new client.Counter({
    name: 'jobprogress_proxy_client_upstream_calls_total',
    help: 'Upstream calls caused by each client key\'s requests (misses, writes, refreshes they started, retries); "anonymous" without PROXY_API_KEYS',
    labelNames: ['client'] as const,
    registers: [o.metrics.registry],
  })
  for (const name of names) calls.inc({ client: name }, 0)
  const byName = new Map<string, client.Counter.Internal>()
  o.upstream.onCall = (call) => {
    const name = call.account ?? call.client
    let c = byName.get(name)
    if (!c) {
      // label values are the configured names (and "anonymous"): a bounded set
      if (!names.includes(name)) return
      byName.set(name, (c = calls.labels(name)))
    }
    c.inc()
    accounting.usage.record(name, routeOf(call.path))
  }

  app.addHook('onError', (request, _reply, error, done) => {
    if (request.account && rejected(error)) {
      const c = accounting.counts(request.account)
      if (c) c.rejected++
    }
    done()
  })
  o.answers.on((a) => {
    if (!a.account) return
    const c = accounting.counts(a.account)
    if (c) {
      c.requests++
      if (a.cacheResult === 'HIT') c.hits++
      else if (a.cacheResult === 'STALE') c.stale++
    }
  })

  app.get('/_proxy/usage', async () => {
    const top = accounting.usage.top()
    return {
      span_minutes: USAGE_SPAN_MS / 60_000,
      budget_limit: o.config.rateLimit,
      window_ms: o.config.rateWindowMs,
      top_clients: top.clients,
      top_routes: top.routes,
      clients: accounting.status(),
    }
  })
  return accounting
}
