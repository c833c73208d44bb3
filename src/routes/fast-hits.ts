// Cache hits answered in front of Fastify's router. A bare Fastify route costs a router lookup, a
// Request and a Reply, hook runners and the reply's send pipeline; with the proxy's hooks on top a hit
// reached 0.72 of one (issue 14). Here a GET to /api/v3 that the cache holds is answered by Node's
// server with the same checks (shutdown, the browser guard, path safety, the client key), the same
// answer (cached-answer.ts), Server-Timing, and the same counters and log line (answers.ts) as the
// route in api.ts.
//
// Anything else goes on to Fastify exactly as it came: HEAD, a request with a body, a refused request
// (Fastify refuses it again, with its status and envelope), a miss, shutdown. Nothing is written before
// the whole answer is known, so going on to Fastify is always safe.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyServerFactory } from 'fastify'
import type { Answers } from '../answers.js'
import type { ClientAuth } from '../auth.js'
import type { CacheResult, HttpCache, Served } from '../cache/http-cache.js'
import type { Cell } from '../counter-cells.js'
import { lazyChildLogger, levelEnabled } from '../lazy-logger.js'
import { API_PREFIX, carriesBody, checkApiUrl, type SplitUrl } from '../safety.js'
import { serverTimingValue } from '../server-timing.js'
import type { ProxyState } from '../state.js'
import { ANONYMOUS } from '../upstream/accounting.js'
import { checkBrowserRequest, type HostPolicy } from './browser-guard.js'
import { cachedAnswer, clientGone, isHeld, writeAnswer } from './cached-answer.js'

/** Answers the request and returns true, or returns false having written nothing. */
export type FrontHandler = (req: IncomingMessage, res: ServerResponse) => boolean

/**
 * Fastify's serverFactory option: the HTTP server Fastify would make (fastify/lib/server.js), with
 * `front()` asked first. `front` is late-bound: the cache exists only after Fastify does.
 */
export function serverWithFront(front: () => FrontHandler | undefined): FastifyServerFactory {
  return (handler, opts) => {
    const o = opts as { http?: object; keepAliveTimeout: number; requestTimeout: number; connectionTimeout: number }
    const server: Server = createServer(o.http ?? {}, (req, res) => {
      const f = front()
      if (f === undefined || !f(req, res)) handler(req, res)
    })
    // (a FrontHandler never throws: it answers, or returns false having written nothing)
    server.keepAliveTimeout = o.keepAliveTimeout
    server.requestTimeout = o.requestTimeout
    server.setTimeout(o.connectionTimeout)
    return server
  }
}

export interface FastHitsOptions {
  state: ProxyState
  policy: HostPolicy
  clientAuth: ClientAuth
  cache: HttpCache
  answers: Answers
  /** jobprogress_proxy_cache_requests_total by result, shared with the route */
  byResult: ReadonlyMap<CacheResult, Cell>
  publicUrl: string | undefined
  /** the upstream's base path (/api/v3) */
  upstreamPath: string
  log: FastifyBaseLogger
  nextRequestId: () => string
}

export function fastHits(o: FastHitsOptions): FrontHandler {
  return (req, res) => {
    const url = req.url
    // (shutting down: Fastify's route answers, with Connection: close from the moment close() starts)
    if (req.method !== 'GET' || url === undefined || !url.startsWith(API_PREFIX) || !o.state.ready) return false
    const h = req.headers
    if (carriesBody(h)) return false
    const start = performance.now()
    let api: SplitUrl
    let clientName: string
    let account: string
    let served: Served | undefined
    try {
      checkBrowserRequest(o.policy, req)
      api = checkApiUrl(url)
      clientName = o.clientAuth.identify({ headers: h, ip: (req.socket as Socket).remoteAddress ?? '' })
      account = o.clientAuth.enabled ? clientName : ANONYMOUS
      const cacheControl = h['cache-control']
      served = o.cache.lookup({ rawPath: api.rawPath, rawQuery: api.rawQuery, cacheControl, client: clientName, account, signal: () => clientGone(res) })
    } catch {
      return false // refused (a 4xx of the guard, the path or key check, a malformed query): Fastify answers it
    }
    if (served === undefined) return false // a call is needed: Fastify's route makes it
    try {
      const a = cachedAnswer(served, req, o.publicUrl, o.upstreamPath)
      if (!isHeld(a)) return false // (never: lookup() answers from entries, which hold bytes; the route streams)
      o.byResult.get(served.result)!.inc()
      writeAnswer(res, a, serverTimingValue(served.result, undefined, performance.now() - start))
      o.answers.emit({
        method: 'GET',
        url,
        status: a.status,
        api,
        cacheResult: served.result,
        clientName,
        account,
        elapsedMs: performance.now() - start,
        // a request's own logger (its reqId) only when a request line will be written
        log: levelEnabled(o.log, 'info') ? lazyChildLogger(o.log, { reqId: o.nextRequestId() }, {}) : o.log,
      })
      return true
    } catch (err) {
      // a bug in composing the answer: Fastify's route tries again (a second lookup) and answers 500 in the envelope
      o.log.error({ err }, 'answering a cache hit failed')
      if (!res.headersSent) return false
      res.destroy()
      return true
    }
  }
}
