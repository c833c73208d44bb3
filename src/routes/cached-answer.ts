// The answer to a GET or HEAD the cache served: status, headers and bytes, decided in one place for
// the /api/v3 route (api.ts) and the hit path in front of the router (fast-hits.ts), so that the two
// cannot drift apart. Server-Timing and Content-Length are added by whoever writes it. Also the
// signal both give the cache for a client that leaves before its answer (clientGone).
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import type { Served } from '../cache/http-cache.js'
import { bodyOf, represent } from '../cache/representation.js'

export interface CachedAnswer {
  status: number
  headers: Record<string, string | string[]>
  /** undefined for a 304 */
  body: Buffer | Readable | undefined
}

/** What of the client's request the answer depends on. */
export interface AnswerRequest {
  readonly headers: IncomingHttpHeaders
  readonly socket: Socket
}

const HOST_HEADER = /^[a-z0-9._~-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/i

/** The URL the client used, without /api/v3: its scheme and (allowed) Host, else the address it reached. */
export function clientBase(req: AnswerRequest): string {
  const protocol = (req.socket as Socket & { encrypted?: boolean }).encrypted ? 'https' : 'http'
  const host = req.headers.host
  if (host && HOST_HEADER.test(host)) return `${protocol}://${host}`
  const address = req.socket.localAddress ?? '127.0.0.1'
  return `${protocol}://${address.includes(':') ? `[${address}]` : address}:${req.socket.localPort}`
}

function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false
  if (ifNoneMatch.trim() === '*') return true
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)
}

/**
 * The entry's headers, X-Cache, Cache-Status, Age, Vary, Content-Encoding and ETag; a 304 when the
 * client's If-None-Match names this representation. Pagination links are rewritten onto PUBLIC_URL or
 * the client's own URL now (the entry keeps JobProgress's); an answer too large for an entry streams
 * through as it is.
 */
export function cachedAnswer(s: Served, req: AnswerRequest, publicUrl: string | undefined, upstreamPath: string): CachedAnswer {
  const headers: Record<string, string | string[]> = { ...s.headers, 'x-cache': s.result, 'cache-status': s.cacheStatus }
  if (s.age !== undefined) headers.age = String(s.age)
  const r = represent(s, req.headers['accept-encoding'])
  headers.vary = r.vary
  if (r.gzip) headers['content-encoding'] = 'gzip'
  if (r.etag) {
    headers.etag = r.etag
    if (s.status === 200 && etagMatches(req.headers['if-none-match'], r.etag)) {
      delete headers['content-type']
      return { status: 304, headers, body: undefined }
    }
  }
  return { status: s.status, headers, body: bodyOf(s, r, { base: publicUrl ?? (() => clientBase(req)), upstreamPath }) }
}

/**
 * Writes an answer held as bytes (or a 304) on Node's response, with Server-Timing and Content-Length:
 * the hit path's way, and the route's for everything but a streamed answer (one writer for both).
 */
export function writeAnswer(res: ServerResponse, a: CachedAnswer & { body: Buffer | undefined }, serverTiming: string): void {
  a.headers['server-timing'] = serverTiming
  if (a.body === undefined) {
    res.writeHead(a.status, a.headers).end()
    return
  }
  a.headers['content-length'] = String(a.body.length)
  res.writeHead(a.status, a.headers).end(a.body)
}

export function isHeld(a: CachedAnswer): a is CachedAnswer & { body: Buffer | undefined } {
  return a.body === undefined || Buffer.isBuffer(a.body)
}

/** An AbortSignal that fires when the client goes away before its answer is written. */
export function clientGone(res: ServerResponse): AbortSignal {
  const controller = new AbortController()
  res.once('close', () => {
    if (!res.writableFinished) controller.abort()
  })
  return controller.signal
}
