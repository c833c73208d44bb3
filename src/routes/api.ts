// /api/v3/*: GET and HEAD through the cache; every other method forwarded by @fastify/http-proxy.
// Both end in Upstream.call (the pass-through via the reply-from dispatcher adapter).
import httpProxy from '@fastify/http-proxy'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Answers } from '../answers.js'
import type { ClientAuth } from '../auth.js'
import { auditWrites } from '../audit.js'
import { BodyBudget, HELD_BODIES } from '../body-budget.js'
import type { Readable } from 'node:stream'
import type { CacheRequest, Served } from '../cache/http-cache.js'
import { settleWrite } from '../cache/write-refresh.js'
import { cellOf } from '../counter-cells.js'
import type { Config } from '../config.js'
import { BadRequest, ShuttingDown, withRetryAfter } from '../errors.js'
import type { Metrics } from '../metrics.js'
import { API_PREFIX, carriesBody, checkApiUrl, type SplitUrl } from '../safety.js'
import { clientResponseHeaders } from '../upstream/headers.js'
import { BufferedBody, kCall, replyFromDispatcher, type CallMeta } from '../upstream/dispatcher.js'
import { ANONYMOUS, newTiming } from '../upstream/accounting.js'
import type { HostPolicy } from './browser-guard.js'
import { cachedAnswer, clientGone, isHeld, writeAnswer } from './cached-answer.js'
import { serverTimingValue } from '../server-timing.js'
import { fastHits, type FrontHandler } from './fast-hits.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** the /api/v3 URL, checked and split by the guard */
    api: SplitUrl
  }
}

const PASS_THROUGH_METHODS = ['DELETE', 'OPTIONS', 'PATCH', 'POST', 'PUT'] as const

export interface ApiOptions {
  config: Readonly<Config>
  clientAuth: ClientAuth
  metrics: Metrics
  /** for the hit path in front of the router */
  policy: HostPolicy
  answers: Answers
  nextRequestId: () => string
}

/** Registers the routes; returns the hit path to run in front of Fastify's router (fast-hits.ts). */
export async function registerApiRoutes(app: FastifyInstance, o: ApiOptions): Promise<FrontHandler> {
  const { cache, upstream } = app
  const upstreamPath = o.config.apiUrl.pathname.replace(/\/+$/, '')

  // Shutdown, path safety and client identity, before anything else looks at an /api/v3 request.
  const check = (request: FastifyRequest, reply: FastifyReply) => {
    if (app.proxyState.closing) {
      reply.header('connection', 'close')
      throw withRetryAfter(new ShuttingDown(), 5)
    }
    request.timing = newTiming() // Server-Timing: the budget wait and upstream time of its calls
    request.api = checkApiUrl(request.raw.url ?? '/')
    request.clientName = o.clientAuth.identify(request)
    request.account = o.clientAuth.enabled ? request.clientName : ANONYMOUS
  }
  const guard = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    try {
      check(request, reply)
      done()
    } catch (err) {
      done(err as Error)
    }
  }

  const byResult = new Map((['HIT', 'MISS', 'STALE', 'BYPASS'] as const).map((r) => [r, cellOf(o.metrics.cacheRequests, { result: r.toLowerCase() })]))

  // Synchronous when the store has the answer: no promise on the hit path.
  const cached = (request: FastifyRequest, reply: FastifyReply) => {
    check(request, reply) // the guard, inline: no hook runner on the hit path
    if (carriesBody(request.headers)) {
      throw new BadRequest(`A ${request.method} request must not carry a body`)
    }
    const req: CacheRequest = {
      rawPath: request.api.rawPath,
      rawQuery: request.api.rawQuery,
      cacheControl: request.headers['cache-control'],
      client: request.clientName,
      account: request.account,
      timing: request.timing ?? undefined,
      signal: () => clientGone(reply.raw), // made only when a call is needed: hits stay cheap
    }
    const hit = cache.lookup(req)
    if (hit) return send(request, reply, hit)
    return cache.get(req).then((served) => send(request, reply, served))
  }

  // An answer held as bytes is written as the hit path writes it (the waiters of one fill are
  // answered one after another in one tick: Fastify's send pipeline cost ~40 us each); onResponse
  // still runs (Fastify listens for the end of every routed answer). A streamed answer goes through
  // Fastify, which handles a stream that fails halfway.
  // (returns the reply: a handler's promise that resolves to undefined would make Fastify send an empty answer)
  function send(request: FastifyRequest, reply: FastifyReply, s: Served): FastifyReply {
    request.cacheResult = s.result
    byResult.get(s.result)!.inc()
    const a = cachedAnswer(s, request.raw, o.config.publicUrl, upstreamPath)
    if (!isHeld(a)) return reply.headers(a.headers).code(a.status).send(a.body)
    try {
      writeAnswer(reply.raw, a, serverTimingValue(s.result, request.timing ?? undefined, reply.elapsedTime))
    } catch (err) {
      // writeHead refused a header before anything was sent: Fastify answers 500 in the envelope
      if (!reply.raw.headersSent) throw err
      reply.raw.destroy()
    }
    reply.hijack() // written: Fastify sends nothing more (its onResponse still runs)
    return reply
  }

  app.decorateRequest('api', null as unknown as SplitUrl)
  for (const url of [API_PREFIX, `${API_PREFIX}/*`]) {
    app.route({ method: 'GET', url, handler: cached })
  }

  const replies = new WeakMap<FastifyRequest, FastifyReply>()

  // Everything else streams through @fastify/http-proxy, the body read first (bounded by
  // BODY_LIMIT_BYTES, 413 past it) so a call resent after a 429 sends the same bytes.
  await app.register(async (scope) => {
    scope.addHook('onRequest', guard) // before the body is read: no upload from an unknown client
    scope.addHook('onSend', auditWrites(app.audit))
    // reply-from's rewriteRequestHeaders gets the request only; the signal needs the reply
    scope.addHook('onRequest', (request, reply, done) => {
      replies.set(request, reply)
      done()
    })
    // the bytes of bodies held at once are bounded (src/body-budget.ts): 503 QUEUE_FULL past it
    scope.addHook(
      'preParsing',
      new BodyBudget(HELD_BODIES * o.config.bodyLimitBytes).hook(() => upstream.throttle.retryAfterSeconds()),
    )
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: o.config.bodyLimitBytes }, (_req, body, done) => {
      done(null, new BufferedBody(body as Buffer))
    })
    await scope.register(httpProxy, {
      upstream: o.config.apiUrl.origin,
      prefix: API_PREFIX,
      rewritePrefix: o.config.apiUrl.pathname,
      httpMethods: [...PASS_THROUGH_METHODS],
      proxyPayloads: false,
      undici: replyFromDispatcher(upstream) as never,
      disableRequestLogging: true,
      internalRewriteLocationHeader: false,
      replyOptions: {
        retryDelay: () => null,
        rewriteRequestHeaders: (request, headers) => {
          const reply = replies.get(request as FastifyRequest)!
          const meta: CallMeta = {
            ...request.api,
            client: request.clientName,
            cls: request.method === 'OPTIONS' ? 'read' : 'write',
            signal: clientGone(reply.raw),
            account: request.account,
            timing: request.timing ?? undefined,
          }
          return Object.assign(headers, { [kCall]: meta })
        },
        rewriteHeaders: (headers) => clientResponseHeaders(headers),
        // reply-from does not await this: nothing in it may throw asynchronously
        onResponse: (request, reply, res) => {
          const stream = (res as unknown as { stream: NodeJS.ReadableStream }).stream
          const status = reply.statusCode
          if (status < 200 || status >= 300 || request.method === 'OPTIONS') {
            reply.send(stream)
            return
          }
          // the first tier is evicted at once; the answer waits for the Redis tier in distributed
          // mode, so that a read after the write never finds the old entry there. A JSON answer is
          // read first: it may refresh the written resource's entry (resource-aware: write refresh)
          settleWrite(cache, { method: request.method, rawPath: request.api.rawPath, contentType: reply.getHeader('content-type'), stream: stream as Readable, log: request.log }).then(
            ({ evicted, out }) => {
              if (evicted) request.log.debug({ evicted }, 'evicted after write')
              reply.send(out)
            },
            (err: unknown) => reply.send(err),
          )
        },
        onError: (reply, { error }) => {
          const cause = (error as Error & { cause?: unknown }).cause
          reply.send(cause && typeof cause === 'object' && 'code' in cause ? cause : error)
        },
      },
    })
  })

  return fastHits({
    state: app.proxyState,
    policy: o.policy,
    clientAuth: o.clientAuth,
    cache,
    answers: o.answers,
    byResult,
    publicUrl: o.config.publicUrl,
    upstreamPath,
    log: app.log,
    nextRequestId: o.nextRequestId,
  })
}
