// /_proxy/: status JSON, the dashboard, and the admin actions (purge).
import type { FastifyInstance } from 'fastify'
import type { AdminAuth } from '../auth.js'
import type { CacheStats, HttpCache } from '../cache/http-cache.js'
import type { Config } from '../config.js'
import { BadRequest } from '../errors.js'
import { API_PREFIX } from '../safety.js'
import { DASHBOARD_HTML } from './dashboard.js'
import type { History } from '../history.js'
import type { UpstreamError } from '../upstream/client.js'
import { daysLeft } from '../upstream/token.js'
import type { ClientStatus } from '../clients.js'
import { VERSION } from '../version.js'

export interface Status {
  version: string
  uptime_seconds: number
  requests: number
  /** distributed mode: whether Redis is up and which budget is in use; null without REDIS_URL */
  distributed: { redis: 'up' | 'down'; budget: 'shared' | 'local' } | null
  token: { expires_at: string | null; expires_in_days: number | null }
  /** the cache's counters (CacheStats) and its size */
  cache: CacheStats & {
    entries: number
    bytes: number
    max_bytes: number
    inflight: number
    /** resource-aware levers: what they served, routes verified, levers turned off */
    resource: ReturnType<HttpCache['resources']['status']>
  }
  upstream: {
    calls: number
    throttled: number
    queue_depth: number
    running: number
    budget_left: number
    budget_limit: number
    window_ms: number
    paused_for_ms: number
    queue_full: number
    queue_timeouts: number
    wait_ms_avg: number
    unauthorized: number
    last_unauthorized_at: string | null
    recent_errors: UpstreamError[]
  }
  /** by client key name ("anonymous" without keys): who spends the budget */
  clients: Record<string, ClientStatus>
}

export function registerProxyRoutes(app: FastifyInstance, o: { config: Readonly<Config>; adminAuth: AdminAuth; history: History }): void {
  app.get('/_proxy/status', async (): Promise<Status> => {
    const { cache, upstream, proxyState } = app
    const t = upstream.throttle
    return {
      version: VERSION,
      uptime_seconds: Math.round((Date.now() - proxyState.startedAt) / 1000),
      requests: proxyState.requests,
      distributed: app.distributed ? { redis: app.distributed.up() ? 'up' : 'down', budget: t.budget.name } : null,
      token: {
        expires_at: upstream.tokenExpiresAt?.toISOString() ?? null,
        expires_in_days: daysLeft(upstream.tokenExpiresAt) ?? null,
      },
      cache: {
        entries: cache.store.entries,
        bytes: cache.store.bytes,
        max_bytes: o.config.cacheMaxBytes,
        ...cache.stats,
        inflight: cache.inflight,
        resource: cache.resources.status(),
      },
      upstream: {
        calls: t.stats.calls,
        throttled: t.stats.throttled,
        queue_depth: t.depth,
        running: t.running,
        budget_left: await t.budgetLeft(),
        budget_limit: o.config.rateLimit,
        window_ms: o.config.rateWindowMs,
        paused_for_ms: Math.max(0, t.pausedUntil - Date.now()),
        queue_full: t.stats.queueFull,
        queue_timeouts: t.stats.queueTimeouts,
        wait_ms_avg: t.stats.calls ? Math.round(t.stats.waitMsTotal / t.stats.calls) : 0,
        unauthorized: upstream.unauthorized,
        last_unauthorized_at: upstream.lastUnauthorizedAt?.toISOString() ?? null,
        recent_errors: upstream.recentErrors,
      },
      clients: app.clients.status(),
    }
  })

  app.get('/_proxy/history', async () => ({ interval_ms: o.history.intervalMs, samples: o.history.samples }))

  app.get('/_proxy/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(DASHBOARD_HTML))
  app.get('/_proxy', async (_request, reply) => reply.redirect('/_proxy/'))

  app.delete('/_proxy/cache', async (request) => {
    o.adminAuth.check(request)
    // a misspelt parameter (?prefx=/jobs) must not purge everything
    const unknown = Object.keys(request.query as object).filter((k) => k !== 'prefix')
    if (unknown.length) throw new BadRequest(`Unknown parameter ${JSON.stringify(unknown[0]!.slice(0, 50))}: the only one is prefix (e.g. ?prefix=/jobs); nothing was purged`)
    const { prefix } = request.query as { prefix?: string }
    if (prefix !== undefined) {
      if (typeof prefix !== 'string' || !prefix.startsWith('/')) throw new BadRequest('prefix must be a path such as /jobs')
    }
    const p = prefix?.startsWith(API_PREFIX + '/') ? prefix.slice(API_PREFIX.length) : prefix
    const purged = await app.cache.purge(p && p !== '/' ? p.replace(/\/+$/, '') : undefined)
    request.log.info({ prefix: p ?? '(all)', purged }, 'cache purged')
    return { purged, prefix: p ?? null }
  })
}
