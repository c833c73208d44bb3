// Which representation of a cached answer a client gets: the stored gzip bytes as they are when it
// accepts gzip, else the identity bytes. Each representation has its own ETag; both carry
// Vary: Accept-Encoding. GET, HEAD and 304 go through here alike.
//
// Pagination links are rewritten onto the client's base at the moment of answering (links.ts). An entry
// without links (most) is sent as stored. One with links that need rewriting gets its rewritten bytes
// gzipped once per base, kept in a small LRU bounded by bytes (the entry itself keeps JobProgress's).
import type { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { LRUCache } from 'lru-cache'
import { acceptsGzip, gzipEtag, GZIP_LEVEL } from './encoding.js'
import type { Served } from './http-cache.js'
import { rewritePaginationLinks } from './links.js'
import { identityBody, type Entry } from './store.js'

export interface Links {
  /** PUBLIC_URL, or the client's base (called only for a body with links) */
  base: string | (() => string)
  /** the upstream's base path (/api/v3) */
  upstreamPath: string
}

export interface Representation {
  gzip: boolean
  etag: string | undefined
  /** the Vary header: the entry's, with Accept-Encoding */
  vary: string
}

/** Which representation a client gets, its ETag and its Vary header (Content-Encoding: gzip when `gzip`). */
export function represent(s: Served, acceptEncoding: string | undefined): Representation {
  const v = s.headers.vary
  const vary = v === undefined ? 'Accept-Encoding' : withAcceptEncoding(v)
  if (s.encoding === 'gzip' && acceptsGzip(acceptEncoding)) return { gzip: true, etag: s.etag && gzipEtag(s.etag), vary }
  return { gzip: false, etag: s.etag, vary }
}

// entries known to have no "links" in their identity bytes (nothing to rewrite: stored bytes as they are)
const noLinks = new WeakSet<Entry>()
// gzip of rewritten bodies, by entry and base
const rewrittenGz = new LRUCache<string, Buffer>({ maxSize: 4 * 1024 * 1024, sizeCalculation: (b) => b.length + 64 })
const ids = new WeakMap<Entry, number>()
let nextId = 0

/** The bytes to send for the representation chosen by represent(). */
export function bodyOf(s: Served, r: Representation, links: Links): Buffer | Readable {
  if (!Buffer.isBuffer(s.body)) return s.body // streamed through as it is
  if (!r.gzip) return rewritePaginationLinks(s.encoding === 'gzip' ? identityBody(s.entry!) : s.body, links.base, links.upstreamPath)
  const e = s.entry!
  if (noLinks.has(e)) return s.body
  const identity = identityBody(e)
  if (identity.indexOf('"links"') < 0) {
    noLinks.add(e)
    return s.body
  }
  const rewritten = rewritePaginationLinks(identity, links.base, links.upstreamPath)
  if (rewritten === identity) return s.body
  let id = ids.get(e)
  if (id === undefined) ids.set(e, (id = nextId++))
  const key = `${id} ${typeof links.base === 'string' ? links.base : links.base()}`
  let gz = rewrittenGz.get(key)
  if (!gz) rewrittenGz.set(key, (gz = gzipSync(rewritten, { level: GZIP_LEVEL })))
  return gz
}

function withAcceptEncoding(vary: string | string[]): string {
  const v = Array.isArray(vary) ? vary.join(', ') : vary
  return /(^|,)\s*(accept-encoding|\*)\s*(,|$)/i.test(v) ? v : `${v}, Accept-Encoding`
}
