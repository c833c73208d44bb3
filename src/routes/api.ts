// /api/v3/*: GET and HEAD through the cache; every other method forwarded by @fastify/http-proxy.
// Both end in Upstream.call (the pass-through via the reply-from dispatcher adapter).
import httpProxy from '@fastify/http-proxy'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ClientAuth } from '../auth.js'
import type { Served } from '../cache/http-cache.js'
import type { Config } from '../config.js'
import { BadRequest } from '../errors.js'
import type { Metrics } from '../metrics.js'
import { API_PREFIX, checkApiUrl } from '../safety.js'
import { clientResponseHeaders } from '../upstream/headers.js'
import { BufferedBody, kCall, replyFromDispatcher, type CallMeta } from '../upstream/dispatcher.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** aborts when the client goes away before its answer is written */
    clientGone: AbortSignal
  }
}

const PASS_THROUGH_METHODS = ['DELETE', 'OPTIONS', 'PATCH', 'POST', 'PUT'] as const

/** An AbortSignal that fires when the client goes away before its answer is written. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort()
  })
  return controller.signal
}

function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false
  if (ifNoneMatch.trim() === '*') return true
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)
}

export async function registerApiRoutes(app: FastifyInstance, o: { config: Readonly<Config>; clientAuth: ClientAuth; metrics: Metrics }): Promise<void> {
  const { cache, upstream } = app

  // Path safety and client identity, before anything else looks at an /api/v3 request.
  const guard = async (request: FastifyRequest, reply: FastifyReply) => {
    checkApiUrl(request.raw.url ?? '/')
    request.clientName = o.clientAuth.identify(request)
    request.clientGone = clientGone(reply)
  }

  const cached = async (request: FastifyRequest, reply: FastifyReply) => {
    const { rawPath, rawQuery } = checkApiUrl(request.raw.url ?? '/')
    if (request.headers['content-length'] && request.headers['content-length'] !== '0' || request.headers['transfer-encoding']) {
      throw new BadRequest(`A ${request.method} request must not carry a body`)
    }
    const served = await cache.get({
      rawPath,
      rawQuery,
      cacheControl: request.headers['cache-control'],
      client: request.clientName,
      signal: request.clientGone,
    })
    request.cacheResult = served.result
    o.metrics.cacheRequests.inc({ result: served.result.toLowerCase() })
    return send(request, reply, served)
  }

  function send(request: FastifyRequest, reply: FastifyReply, s: Served) {
    reply.headers(s.headers)
    reply.header('x-cache', s.result)
    reply.header('cache-status', s.cacheStatus)
    if (s.age !== undefined) reply.header('age', String(s.age))
    if (s.etag) {
      reply.header('etag', s.etag)
      if (s.status === 200 && etagMatches(request.headers['if-none-match'], s.etag)) {
        reply.removeHeader('content-type')
        return reply.code(304).send()
      }
    }
    return reply.code(s.status).send(s.body)
  }

  app.decorateRequest('clientGone', null as unknown as AbortSignal)
  for (const url of [API_PREFIX, `${API_PREFIX}/*`]) {
    app.route({ method: 'GET', url, onRequest: guard, handler: cached })
  }

  // Everything else streams through @fastify/http-proxy, the body read first (bounded by
  // BODY_LIMIT_BYTES, 413 past it) so a call resent after a 429 sends the same bytes.
  await app.register(async (scope) => {
    scope.addHook('onRequest', guard) // before the body is read: no upload from an unknown client
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
          const meta: CallMeta = {
            ...checkApiUrl(request.raw.url ?? '/'),
            client: request.clientName,
            cls: request.method === 'OPTIONS' ? 'read' : 'write',
            signal: request.clientGone,
          }
          return Object.assign(headers, { [kCall]: meta })
        },
        rewriteHeaders: (headers) => clientResponseHeaders(headers),
        onResponse: (request, reply, res) => {
          const status = reply.statusCode
          if (status >= 200 && status < 300 && request.method !== 'OPTIONS') {
            const { rawPath } = checkApiUrl(request.raw.url ?? '/')
            const evicted = cache.evictForWrite(rawPath)
            if (evicted) request.log.debug({ evicted }, 'evicted after write')
          }
          reply.send((res as unknown as { stream: NodeJS.ReadableStream }).stream)
        },
        onError: (reply, { error }) => {
          const cause = (error as Error & { cause?: unknown }).cause
          reply.send(cause && typeof cause === 'object' && 'code' in cause ? cause : error)
        },
      },
    })
  })
}
