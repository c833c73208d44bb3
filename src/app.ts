// buildApp(config) -> a Fastify instance with every piece registered. It never listens.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Agent } from 'undici'
import { AdminAuth, ClientAuth } from './auth.js'
import { HttpCache, type CacheResult } from './cache/http-cache.js'
import { CacheStore } from './cache/store.js'
import type { Config, Secret } from './config.js'
import { errorOptions, registerErrorHandlers } from './error-handler.js'
import { once } from 'node:events'
import { History } from './history.js'
import { Distributed } from './redis/distributed.js'
import { trackSockets } from './idle-sockets.js'
import { lazyChildLogger } from './lazy-logger.js'
import { loggerOptions } from './log.js'
import { cellOf, type Cell } from './counter-cells.js'
import { createMetrics, resourceOf } from './metrics.js'
import { openPersistence, type Persistence } from './persistence.js'
import type { SplitUrl } from './safety.js'
import { registerApiRoutes } from './routes/api.js'
import { registerBrowserGuard } from './routes/browser-guard.js'
import { registerOpsRoutes } from './routes/ops.js'
import { registerProxyRoutes } from './routes/proxy-admin.js'
import { Upstream } from './upstream/client.js'
import { registerAudit } from './audit.js'
import { registerClients } from './clients.js'
import { registerServerTiming } from './server-timing.js'

export interface AppOptions {
  config: Readonly<Config>
  token: Secret
  /** clock for cache freshness (tests) */
  now?: () => number
  /** a logger to use instead of pino on stdout (tests capture output this way) */
  logger?: FastifyBaseLogger
  /** extra TLS connect options for the upstream Agent (tests with a private CA) */
  connect?: Agent.Options['connect']
  /** client-side timeouts (slow-loris); tests shorten them */
  timeouts?: Partial<ClientTimeouts>
  /** the dashboard history's sampling interval (5 s; tests shorten it) */
  historyIntervalMs?: number
}

export interface ClientTimeouts {
  /** all request headers must arrive within this */
  headersMs: number
  /** the whole request, body included, must arrive within this */
  requestMs: number
  /** how often Node checks the two above */
  checkMs: number
}

export const CLIENT_TIMEOUTS: ClientTimeouts = { headersMs: 20_000, requestMs: 120_000, checkMs: 2_000 }

/** While Redis is down, each replica spends at most this share of the budget on its own. */
export const OUTAGE_SHARE = 0.25

export interface ProxyState {
  /** false from the start of shutdown: /readyz answers 503 */
  ready: boolean
  /** true once new API calls get 503 SHUTTING_DOWN (after SHUTDOWN_DELAY_MS) */
  closing: boolean
  startedAt: number
  /** client requests answered */
  requests: number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the client's name for logs, fairness and metrics: its key's name, or its address */
    clientName: string
    /** how the cache answered (X-Cache), or ABORTED when the client left first; unset for writes */
    cacheResult?: CacheResult | 'ABORTED'
  }
  interface FastifyInstance {
    upstream: Upstream
    cache: HttpCache
    distributed: Distributed | undefined
    /** CACHE_DIR in use; undefined: memory only */
    persistence: Persistence | undefined
    proxyState: ProxyState
  }
}

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const { config } = o
  const now = o.now ?? Date.now
  const timeouts = { ...CLIENT_TIMEOUTS, ...o.timeouts }
  const app = Fastify({
    ...(o.logger ? { loggerInstance: o.logger } : { logger: loggerOptions(config.logLevel) }),
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLogger,
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    requestTimeout: timeouts.requestMs,
    connectionTimeout: 0,
    http: { headersTimeout: timeouts.headersMs, requestTimeout: timeouts.requestMs, connectionsCheckingInterval: timeouts.checkMs, maxHeaderSize: 16 * 1024 },
    routerOptions: { maxParamLength: 8192 },
    // errors raised before any route runs (a malformed URL, malformed HTTP), in the proxy's envelope
    ...errorOptions(),
  })

  // distributed mode: wait a moment for Redis, start degraded (local budget share) if it is not there
  const distributed = config.redisUrl
    ? new Distributed({ url: config.redisUrl, prefix: 'jpp', budgetId: `${config.rateLimit}-${config.rateWindowMs}-${config.maxConcurrent}`, limit: config.rateLimit, windowMs: config.rateWindowMs, maxConcurrent: config.maxConcurrent, log: app.log })
    : undefined
  if (distributed) await Promise.race([once(distributed.redis, 'ready'), new Promise((r) => setTimeout(r, 2000).unref())])
  // CACHE_DIR: the spent budget and the entries of the last process
  const persistence = openPersistence({ config, token: o.token, log: app.log, now })

  const upstream = new Upstream({
    apiUrl: config.apiUrl,
    token: o.token,
    timeoutMs: config.upstreamTimeoutMs,
    log: app.log,
    connect: o.connect,
    throttle: {
      limit: config.rateLimit,
      windowMs: config.rateWindowMs,
      maxConcurrent: config.maxConcurrent,
      queueMax: config.queueMax,
      queueTimeoutMs: config.queueTimeoutMs,
      shares: config.clientBudgetShares,
      shared: distributed && {
        budget: distributed.budget,
        up: () => distributed.up(),
        fallbackLimit: Math.max(1, Math.floor(config.rateLimit * OUTAGE_SHARE)),
      },
      persist: persistence?.budget,
    },
  })
  const cache = new HttpCache({
    store: new CacheStore({ maxBytes: config.cacheMaxBytes, now }),
    upstream,
    rules: config.cacheRules,
    ttlSeconds: config.cacheTtlSeconds,
    staleSeconds: config.cacheStaleSeconds,
    maxEntryBytes: Math.floor(config.cacheMaxBytes / 8),
    now,
    log: app.log,
    shared: distributed,
    lockMs: config.queueTimeoutMs + config.upstreamTimeoutMs,
  })
  distributed?.onInvalidation((inv) => cache.applyRemote(inv))
  persistence?.start(cache, upstream.throttle)
  const metrics = createMetrics(cache, upstream, config.rateLimit)
  const state: ProxyState = { ready: true, closing: false, startedAt: Date.now(), requests: 0 }
  app.decorate('upstream', upstream)
  app.decorate('cache', cache)
  app.decorate('distributed', distributed)
  app.decorate('persistence', persistence)
  app.decorate('proxyState', state)
  app.decorateRequest('clientName', '')

  const clientAuth = new ClientAuth(config.clientKeys)
  const adminAuth = new AdminAuth(config.adminKey)
  if (!clientAuth.enabled && !isLoopback(config.host)) {
    app.log.warn({ host: config.host }, 'PROXY_API_KEYS is empty and HOST is not a loopback address: anyone who can reach this port can spend the token')
  }

  // While closing, every answer ends its connection, so that keep-alive clients let go: a request
  // listener added at preClose (below) sets it, so no hook runs on every answer before that.

  // One line per request, without the query (it may carry personal data) and never a header.
  // Label lookups are remembered (prom-client hashes labels on every call), and the log line's object
  // is built only when the line is written.
  const requestCounters = new Map<string, Cell>()
  const resourceCounters = new Map<string, Map<string, Cell>>()
  const resources = new WeakMap<SplitUrl, string>()
  app.addHook('onResponse', (request, reply, done) => {
    const label = `${request.method} ${reply.statusCode}`
    let counter = requestCounters.get(label)
    if (!counter) requestCounters.set(label, (counter = cellOf(metrics.requests, { method: request.method, status: String(reply.statusCode) })))
    counter.inc()
    if (clientAuth.enabled && request.clientName) metrics.clientRequests.labels(request.clientName).inc()
    if (request.api) {
      const result = request.cacheResult?.toLowerCase() ?? (request.method === 'GET' || request.method === 'HEAD' ? 'none' : 'write')
      let resource = resources.get(request.api)
      if (!resource) resources.set(request.api, (resource = resourceOf(request.api.rawPath)))
      let byResource = resourceCounters.get(result)
      if (!byResource) resourceCounters.set(result, (byResource = new Map<string, Cell>()))
      let c = byResource.get(resource)
      if (!c) byResource.set(resource, (c = cellOf(metrics.resourceRequests, { resource, result })))
      c.inc()
    }
    state.requests++
    const log = request.log as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }
    if (log.isLevelEnabled && !log.isLevelEnabled('info')) return done()
    const path = request.url.split('?', 1)[0]
    request.log.info(
      {
        method: request.method,
        path,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        cache: request.cacheResult,
        client: request.clientName || undefined,
      },
      'request',
    )
    done()
  })

  registerErrorHandlers(app, { bodyLimitBytes: config.bodyLimitBytes })

  // Host allow-list and cross-site refusal, first on every route but the probes
  registerBrowserGuard(app, config)
  // team features: Server-Timing on every answer, the audit of writes, who spends the budget
  registerServerTiming(app)
  registerAudit(app, config.auditLog)
  registerClients(app, { config, metrics, upstream })
  registerOpsRoutes(app, { state, metrics, redis: distributed && { ready: () => distributed.up() } })
  const history = new History(o.historyIntervalMs ?? 5_000, 15 * 60_000, async () => ({
    requests: state.requests,
    hits: cache.stats.hits,
    misses: cache.stats.misses,
    stale: cache.stats.stale,
    bypass: cache.stats.bypass,
    calls: upstream.throttle.stats.calls,
    throttled: upstream.throttle.stats.throttled,
    unauthorized: upstream.unauthorized,
    queue: upstream.throttle.depth,
    budget: await upstream.throttle.budgetLeft(),
    bytes: cache.store.bytes,
  }))
  history.start()
  // the token's expiry is checked at start (Upstream) and then twice a day
  const expiryCheck = setInterval(() => upstream.checkTokenExpiry(), 12 * 3_600_000)
  expiryCheck.unref()
  registerProxyRoutes(app, { config, adminAuth, history })
  await registerApiRoutes(app, { config, clientAuth, metrics })

  // Shutdown: not ready at once (load balancers stop sending), keep serving for SHUTDOWN_DELAY_MS,
  // then refuse new calls and give calls still waiting for the budget a 503: they were never sent,
  // and another replica (or a retry) can take them. Calls in flight run to their end.
  const sockets = trackSockets(app.server)
  app.addHook('preClose', async () => {
    state.ready = false
    if (config.shutdownDelayMs) await new Promise((r) => setTimeout(r, config.shutdownDelayMs))
    state.closing = true
    app.server.prependListener('request', (_req: unknown, res: { setHeader(n: string, v: string): void }) => res.setHeader('connection', 'close'))
    upstream.throttle.rejectWaiting()
    sockets.closeIdle()
  })
  app.addHook('onClose', async () => {
    history.stop()
    clearInterval(expiryCheck)
    await upstream.close()
    await distributed?.close()
    persistence?.close()
  })
  return app
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host)
}
