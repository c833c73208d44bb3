// buildApp(config) -> a Fastify instance with every piece registered. It never listens.
// Assembly only: each piece is a module of its own (docs/architecture.md says which does what).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { once } from 'node:events'
import type { Agent } from 'undici'
import { Answers, registerAnswers, requestIds } from './answers.js'
import { registerAudit } from './audit.js'
import { AdminAuth, ClientAuth } from './auth.js'
import { HttpCache } from './cache/http-cache.js'
import { CacheStore } from './cache/store.js'
import { registerClients } from './clients.js'
import type { Config, Secret } from './config.js'
import { errorOptions, registerErrorHandlers } from './error-handler.js'
import { lazyChildLogger } from './lazy-logger.js'
import { loggerOptions } from './log.js'
import { createMetrics } from './metrics.js'
import { openPersistence } from './persistence.js'
import { registerHistory } from './plugins/history.js'
import { registerLifecycle } from './plugins/lifecycle.js'
import { registerRequestLog } from './plugins/request-log.js'
import { Distributed } from './redis/distributed.js'
import { registerApiRoutes } from './routes/api.js'
import { registerBrowserGuard } from './routes/browser-guard.js'
import { serverWithFront, type FrontHandler } from './routes/fast-hits.js'
import { registerOpsRoutes } from './routes/ops.js'
import { registerProxyRoutes } from './routes/proxy-admin.js'
import { registerServerTiming } from './server-timing.js'
import { CLIENT_TIMEOUTS, isLoopback, newProxyState, type ClientTimeouts } from './state.js'
import { Upstream } from './upstream/client.js'

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
  /** answer cache hits in front of Fastify's router (routes/fast-hits.ts); tests compare both ways */
  fastHits?: boolean
}

/** While Redis is down, each replica spends at most this share of the budget on its own. */
export const OUTAGE_SHARE = 0.25

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const { config } = o
  const now = o.now ?? Date.now
  const timeouts = { ...CLIENT_TIMEOUTS, ...o.timeouts }
  const nextRequestId = requestIds()
  let front: FrontHandler | undefined // set once the routes exist
  const app = Fastify({
    serverFactory: serverWithFront(() => front),
    genReqId: nextRequestId,
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
    ? new Distributed({
        url: config.redisUrl,
        prefix: 'jpp',
        budgetId: `${config.rateLimit}-${config.rateWindowMs}-${config.maxConcurrent}`,
        limit: config.rateLimit,
        windowMs: config.rateWindowMs,
        maxConcurrent: config.maxConcurrent,
        log: app.log,
      })
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
  const state = newProxyState()
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

  // what every answer leaves behind: counters, the request log line, per-client counts
  const answers = new Answers()
  registerAnswers(app, answers)
  registerRequestLog(answers, { metrics, clientAuth, state })
  registerErrorHandlers(app, { bodyLimitBytes: config.bodyLimitBytes })

  // Host allow-list and cross-site refusal, first on every route but the probes
  const policy = registerBrowserGuard(app, config)
  // team features: Server-Timing on every answer, the audit of writes, who spends the budget
  registerServerTiming(app)
  registerAudit(app, config.auditLog)
  registerClients(app, { config, metrics, upstream, answers })
  registerOpsRoutes(app, { state, metrics, redis: distributed && { ready: () => distributed.up() } })
  const history = registerHistory(app, { state, intervalMs: o.historyIntervalMs ?? 5_000 })
  registerProxyRoutes(app, { config, adminAuth, history })
  const fast = await registerApiRoutes(app, { config, clientAuth, metrics, policy, answers, nextRequestId })
  if (o.fastHits !== false) front = fast

  registerLifecycle(app, { state, shutdownDelayMs: config.shutdownDelayMs })
  return app
}
