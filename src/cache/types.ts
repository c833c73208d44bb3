// The cache's shapes, shared by http-cache.ts and the modules it delegates to (fill.ts, invalidation.ts);
// http-cache.ts re-exports them, so the rest of the proxy imports them from there.
import type { FastifyBaseLogger } from 'fastify'
import type { Readable } from 'node:stream'
import type { Upstream } from '../upstream/client.js'
import type { CallTiming } from '../upstream/accounting.js'
import type { CacheRules } from './rules.js'
import type { Encoding } from './encoding.js'
import type { CacheStore, Entry, EvictFilter } from './store.js'

export type CacheResult = 'HIT' | 'MISS' | 'STALE' | 'BYPASS'

export interface Served {
  result: CacheResult
  status: number
  headers: Readonly<Record<string, string | string[]>>
  /**
   * Buffer: in `encoding` (a compressed entry's stored bytes are sent as they are to gzip clients).
   * A stream only for an answer larger than an entry may be (never held whole, never stored; identity).
   */
  body: Buffer | Readable
  encoding: Encoding
  /** the entry answered from (identityBody() of it for clients without gzip) */
  entry?: Entry
  /** the RFC 9211 Cache-Status value */
  cacheStatus: string
  etag?: string
  /** seconds since stored, on HIT and STALE */
  age?: number
}

export interface CacheRequest {
  /** path under /api/v3, percent-encoded as sent */
  rawPath: string
  /** '' or '?...', as sent */
  rawQuery: string
  cacheControl: string | undefined
  client: string
  /** whose budget a call spends (client key name or "anonymous"); default: client */
  account?: string
  /** this request's Server-Timing figures: a call it makes or joins adds to them */
  timing?: CallTiming
  /** aborts when the client leaves; asked for only when an upstream call is needed */
  signal: () => AbortSignal
}

export interface CacheStats {
  hits: number
  misses: number
  stale: number
  bypass: number
  evicted: number
  refreshes: number
}

export interface HttpCacheOptions {
  store: CacheStore
  upstream: Upstream
  rules: CacheRules
  ttlSeconds: number
  staleSeconds: number
  maxEntryBytes: number
  now: () => number
  log: FastifyBaseLogger
  /** distributed mode: the Redis tier, its invalidations and its fill lock */
  shared?: SharedCache
  /** how long a replica holds the fill lock of a key, and others wait for it */
  lockMs?: number
}

/** The second tier (src/redis/distributed.ts), as the cache sees it. */
export interface SharedCache {
  up(): boolean
  get(key: string): Promise<Entry | undefined>
  set(e: Entry): Promise<void>
  invalidate(inv: Invalidation, filters: EvictFilter[]): Promise<void>
  lock(key: string, ms: number): Promise<boolean>
  filled(key: string): Promise<void>
  waitFor(key: string, ms: number): Promise<Entry | undefined>
}

export type Invalidation = { op: 'write'; path: string } | { op: 'purge'; prefix: string | undefined }
