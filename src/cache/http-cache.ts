// Cache policy for GET (and HEAD): fresh hits, coalesced misses, stale-while-revalidate,
// stale-if-error, client directives, and precise eviction after writes. HTTP is the route's job;
// this file decides what to answer.
import type { FastifyBaseLogger } from 'fastify'
import type { Readable } from 'node:stream'
import { LRUCache } from 'lru-cache'
import { NotCached, QueueFull, QueueTimeout, UpstreamLeakedToken, UpstreamTimeout, UpstreamUnreachable } from '../errors.js'
import type { Upstream } from '../upstream/client.js'
import { clientResponseHeaders } from '../upstream/headers.js'
import { type CallTiming } from '../upstream/accounting.js'
import { requestDirectives, responseNoStore, type RequestDirectives } from './directives.js'
import { Fanout, readUpTo } from './fanout.js'
import { cacheKey, type CacheKey } from './key.js'
import { Fills, type Fetched, type FetchJob, type Fill } from './covering.js'
import { Resources } from './resource.js'
import { linkedTargets, ttlFor, type CacheRules } from './rules.js'
import type { Encoding } from './encoding.js'
import { CacheStore, holdsInclude, identityBody, makeEntry, type Entry, type EvictFilter } from './store.js'

export type CacheResult = 'HIT' | 'MISS' | 'STALE' | 'BYPASS'
const NAME = 'jobprogress-proxy'

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

// Answers JobProgress sends for the request only, never to be stored or replayed.
const NOT_STORED = new Set(['date', 'content-length', 'age', 'etag', 'x-cache', 'cache-status'])

/** JobProgress answers JSON: a 200 that is not (a maintenance page, a proxy's error) is passed on, never stored. */
function isJson(contentType: string | string[] | undefined, body: Buffer): boolean {
  if (!/\bjson\b/i.test(String(contentType ?? ''))) return false
  try {
    JSON.parse(body.toString('utf8'))
    return true
  } catch {
    return false
  }
}

/** errors and answers that let a stale entry stand in (docs/contract.md: stale-if-error) */
function isFailure(err: unknown): boolean {
  return err instanceof UpstreamUnreachable || err instanceof UpstreamTimeout || err instanceof QueueFull || err instanceof QueueTimeout
}

/** Bound of the URL -> key memo (bytes, estimated from string lengths). */
export const KEY_MEMO_BYTES = 4 * 1024 * 1024

function memoSize(v: { k: CacheKey }, raw: string): number {
  // UTF-16 strings: the raw URL, the key, the path, the includes; plus the objects themselves
  let chars = raw.length + v.k.key.length + v.k.path.length
  for (const i of v.k.includes) chars += i.length
  return chars * 2 + 200
}

export class HttpCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, stale: 0, bypass: 0, evicted: 0, refreshes: 0 }
  readonly store: CacheStore
  readonly #o: HttpCacheOptions
  /** the resource-aware levers (README "Resource-aware caching") */
  readonly resources: Resources
  /** upstream calls in flight or queued, and their waiters (src/cache/covering.ts) */
  readonly #fills: Fills
  /** raw URL -> key and TTL, bounded by bytes: a long unique URL must not pin 30 KB for ever */
  readonly #keys = new LRUCache<string, { k: CacheKey; ttlMs: number }>({ maxSize: KEY_MEMO_BYTES, sizeCalculation: memoSize })

  constructor(o: HttpCacheOptions) {
    this.#o = o
    this.store = o.store
    this.resources = new Resources({ store: o.store, rules: o.rules, now: o.now, log: o.log })
    this.#fills = new Fills({ resources: this.resources, run: (job) => this.#fetch(job), distributed: !!o.shared })
  }

  /** bytes held by the URL -> key memo (estimated), at most KEY_MEMO_BYTES */
  get keyMemoBytes(): number {
    return this.#keys.calculatedSize
  }

  get inflight(): number {
    return this.#fills.size
  }

  /**
   * The answer from the store alone, synchronously: a fresh HIT, or a STALE one (starting the one
   * background refresh). Undefined when an upstream call is needed: then call get().
   */
  lookup(req: CacheRequest): Served | undefined {
    const { k, ttlMs } = this.#keyOf(req.rawPath, req.rawQuery)
    if (ttlMs === 0) return undefined
    const dir = requestDirectives(req.cacheControl)
    if (dir.noStore) return undefined
    const entry = this.store.get(k.key)
    if (!entry || this.#o.now() - entry.storedAt >= entry.ttlMs) {
      const p = this.#projection(k, req, dir)
      if (p) return p
    }
    if (!entry) return undefined
    return this.#serve(k, req, entry, dir, ttlMs)
  }

  /** A fresh wider answer of the same resource holds this one (resource-aware: projection). */
  #projection(k: CacheKey, req: CacheRequest, dir: RequestDirectives): Served | undefined {
    if (dir.noCache) return undefined
    const p = this.resources.fromStore(k, req.rawQuery)
    if (!p || this.#usable(p, dir) !== 'HIT') return undefined
    this.stats.hits++
    this.resources.noteRequest(k)
    return this.#fromEntry(p, 'HIT', `${NAME}; hit; ttl=${Math.floor((p.ttlMs - (this.#o.now() - p.storedAt)) / 1000)}; detail=projection`)
  }

  /**
   * Whether the client's directives accept an entry: HIT (fresh), STALE (served while a refresh runs),
   * or undefined (refetch; with only-if-cached, 504 NOT_CACHED).
   */
  #usable(entry: Entry, dir: RequestDirectives): 'HIT' | 'STALE' | undefined {
    if (dir.noCache || dir.maxAge === 0) return undefined
    const age = this.#o.now() - entry.storedAt
    if (dir.maxAge !== undefined && age > dir.maxAge * 1000) return undefined
    const left = entry.ttlMs - age
    if (left > 0) return dir.minFresh !== undefined && left < dir.minFresh * 1000 ? undefined : 'HIT'
    if (dir.minFresh !== undefined) return undefined
    if (dir.maxStale !== undefined && -left > dir.maxStale * 1000) return undefined
    return 'STALE'
  }

  /** An entry the directives accept, as a HIT or a STALE (starting the one refresh); else undefined. */
  #serve(k: CacheKey, req: CacheRequest, entry: Entry, dir: RequestDirectives, ttlMs: number): Served | undefined {
    const use = this.#usable(entry, dir)
    if (!use) return undefined
    const ttl = Math.floor((entry.ttlMs - (this.#o.now() - entry.storedAt)) / 1000)
    if (use === 'HIT') {
      this.stats.hits++
      return this.#fromEntry(entry, 'HIT', `${NAME}; hit; ttl=${ttl}`)
    }
    // only-if-cached: never upstream, not even the background refresh
    if (!dir.onlyIfCached) this.#refreshStale(k, req, entry, ttlMs)
    this.stats.stale++
    return this.#fromEntry(entry, 'STALE', `${NAME}; hit; ttl=${ttl}; fwd=stale`)
  }

  /**
   * Warm start: refreshes a stale entry in the background, as a request for it would (lowest
   * priority). In distributed mode a fresh entry in the Redis tier is taken instead of calling.
   * Undefined when there is nothing to do (gone, fresh, or a refresh already runs).
   */
  refreshStale(key: string, client: string): Promise<unknown> | undefined {
    const e = this.store.peek(key)
    if (!e || this.#fills.get(key)) return undefined
    const now = this.#o.now()
    if (now - e.storedAt < e.ttlMs || now >= e.storedAt + e.ttlMs + e.staleMs) return undefined
    const rawPath = e.path.split('/').map(encodeURIComponent).join('/')
    const rawQuery = e.key.length > e.path.length ? e.key.slice(e.path.length) : ''
    const { k, ttlMs } = this.#keyOf(rawPath, rawQuery)
    if (k.key !== key || ttlMs === 0) return undefined
    const req: CacheRequest = { rawPath, rawQuery, cacheControl: undefined, client, signal: () => new AbortController().signal }
    const shared = this.#o.shared
    if (shared?.up()) {
      return shared.get(key).then((r) => {
        if (r && this.#o.now() - r.storedAt < r.ttlMs && this.store.peek(key) === e) this.store.set(r)
        else if (!this.#fills.get(key)) return this.#refresh(k, req, ttlMs)
      })
    }
    return this.#refresh(k, req, ttlMs)
  }

  /** Any answer: from the store when it can (see lookup), else through one coalesced upstream call. */
  async get(req: CacheRequest): Promise<Served> {
    const { k, ttlMs } = this.#keyOf(req.rawPath, req.rawQuery)
    const dir = requestDirectives(req.cacheControl)
    if (dir.noStore || ttlMs === 0) {
      if (dir.onlyIfCached) throw new NotCached()
      this.stats.bypass++
      const f = await this.#fetch({ k, req, cls: 'read', signal: req.signal(), ttlMs: undefined, timing: req.timing })
      return { status: f.status, headers: f.headers, body: f.stream?.open() ?? f.body, encoding: 'identity', result: 'BYPASS', cacheStatus: `${NAME}; fwd=bypass; fwd-status=${f.status}` }
    }
    let entry = this.store.get(k.key)
    if (!entry && !dir.noCache && this.#o.shared?.up()) {
      // the second tier: another replica may have it
      const e = await this.#o.shared.get(k.key)
      if (e && this.#o.now() < e.storedAt + e.ttlMs + e.staleMs) {
        this.store.set(e)
        entry = e
      }
    }
    if (entry) {
      const served = this.#serve(k, req, entry, dir, ttlMs)
      if (served) return served
    }
    const projected = this.#projection(k, req, dir)
    if (projected) return projected
    if (dir.onlyIfCached) throw new NotCached()

    this.stats.misses++
    this.resources.noteRequest(k)
    // resource-aware: join a fill that covers this request, or widen a queued one, or ask for more
    let fill = this.#fills.get(k.key)
    if (!fill && !dir.noCache) fill = this.#fills.covering(k)
    fill ??= this.#fills.start(k, req, ttlMs, 'read', req.timing, dir.noCache ? undefined : this.resources.widen(k, ttlMs))
    let fetched: Fetched
    try {
      const joined = await this.#fills.join(fill, req.signal(), k, req.rawQuery)
      if ('early' in joined) {
        // answered from the store while the call was still queued
        this.stats.misses--
        this.stats.hits++
        return this.#fromEntry(joined.early, 'HIT', `${NAME}; hit; detail=covered`)
      }
      fetched = joined
      if (fill.k.key !== k.key) fetched = await this.#fills.narrow(fetched, fill.includes, k, req, ttlMs)
    } catch (err) {
      this.#copyTiming(fill, req)
      if (entry && isFailure(err)) return this.#staleIfError(entry, (err as { statusCode?: number }).statusCode ?? 502)
      throw err
    }
    this.#copyTiming(fill, req)
    if (entry && fetched.status >= 500) return this.#staleIfError(entry, fetched.status)
    let body: Buffer | Readable = fetched.body
    if (fetched.stream) {
      const stream = fetched.stream.open()
      // joined too late to share the stream (its rest already flows): an own call, uncoalesced
      if (!stream) return this.get({ ...req, cacheControl: 'no-store' })
      body = stream
    }
    // an entry was there, but the client's directives (no-cache, max-age, min-fresh, max-stale) refused it
    const fwd = dir.noCache || entry ? 'request' : 'miss'
    return {
      result: 'MISS',
      status: fetched.status,
      headers: fetched.headers,
      body,
      encoding: 'identity',
      etag: fetched.entry?.etag,
      cacheStatus: `${NAME}; fwd=${fwd}; fwd-status=${fetched.status}${fetched.entry ? '; stored' : ''}`,
    }
  }

  /**
   * After a 2xx write: eviction (evictForWrite), then, when the write's answer holds the resource, its
   * plain entry from that answer (resource-aware: write refresh). `body`: the answer, when read.
   */
  async afterWrite(method: string, rawPath: string, body: Buffer | undefined): Promise<number> {
    const path = cacheKey(rawPath, '').path
    this.resources.writes.written(path)
    const n = await this.evictForWrite(rawPath)
    const r = body && this.resources.writes.fromWrite(method, path, body)
    if (!r || !this.resources.on('write-refresh', r.path) || r.body.length > this.#o.maxEntryBytes) return n
    const { k, ttlMs } = this.#keyOf(method === 'POST' ? `${rawPath}/${r.path.split('/').pop()}` : rawPath, '')
    if (!ttlMs || k.path !== r.path) return n
    const e = makeEntry({ key: k.key, path: k.path, includes: [], status: 200, headers: r.headers, body: r.body, storedAt: this.#o.now(), ttlMs, staleMs: this.#o.staleSeconds * 1000 })
    this.store.set(e)
    this.resources.writes.refreshed(k.path, r.body)
    this.resources.stats.write_refreshed++
    this.#fills.release(e)
    return n
  }

  /**
   * After a 2xx write to `rawPath`: the path and its subtree, each ancestor's own entries (any
   * query), and the targets of the link rules. Fills in flight for those keys are not stored.
   */
  async evictForWrite(rawPath: string): Promise<number> {
    return this.#invalidate({ op: 'write', path: cacheKey(rawPath, '').path })
  }

  /** DELETE /_proxy/cache: everything, or one subtree. */
  async purge(prefix?: string): Promise<number> {
    return this.#invalidate({ op: 'purge', prefix })
  }

  /** An invalidation another replica published: this replica's first tier only. */
  applyRemote(inv: Invalidation): number {
    return this.evict(this.#filters(inv))
  }

  /** First tier at once (before any await), then the Redis tier and the other replicas. */
  async #invalidate(inv: Invalidation): Promise<number> {
    const filters = this.#filters(inv)
    const n = this.evict(filters)
    await this.#o.shared?.invalidate(inv, filters)
    return n
  }

  #filters(inv: Invalidation): EvictFilter[] {
    if (inv.op === 'purge') {
      const prefix = inv.prefix
      return prefix ? [{ match: (p) => p === prefix || p.startsWith(prefix + '/') }] : [{ match: () => true }]
    }
    const path = inv.path
    const ancestors = new Set<string>()
    const segs = path.split('/')
    for (let i = segs.length - 1; i > 1; i--) ancestors.add(segs.slice(0, i).join('/'))
    return [
      { match: (p) => p === path || p.startsWith(path + '/') || ancestors.has(p) },
      ...linkedTargets(this.#o.rules, path).map((t) => ({ match: (p: string) => t.match.test(p), includes: t.includes })),
    ]
  }

  /** Applies eviction filters to the store and to fills in flight. */
  evict(filters: EvictFilter[]): number {
    let n = 0
    for (const f of filters) {
      // an entry evicted for one relation still holds the rest: keep its projection without it
      const narrowed: Entry[] = []
      n += this.store.evict(f, f.includes === undefined ? undefined : (e) => narrowed.push(e))
      for (const e of narrowed) this.resources.withoutRelation(e, f.includes!)
      for (const fill of this.#fills.values()) {
        // a fill still queued is sent after the write and sees it
        if (fill.sent && f.match(fill.path) && (f.includes === undefined || holdsInclude(fill.includes, f.includes))) fill.invalidated = true
      }
    }
    this.stats.evicted += n
    return n
  }

  /** cacheKey and TTL rule for a raw URL, remembered: the hit path computes neither twice. */
  #keyOf(rawPath: string, rawQuery: string): { k: CacheKey; ttlMs: number } {
    const raw = rawPath + rawQuery
    let known = this.#keys.get(raw)
    if (!known) {
      const k = cacheKey(rawPath, rawQuery)
      known = { k, ttlMs: ttlFor(this.#o.rules, k.path, this.#o.ttlSeconds) * 1000 }
      this.#keys.set(raw, known)
    }
    return known
  }

  #fromEntry(e: Entry, result: CacheResult, cacheStatus: string): Served {
    const age = Math.max(0, Math.floor((this.#o.now() - e.storedAt) / 1000))
    return { result, status: e.status, headers: e.headers, body: e.body, encoding: e.encoding, entry: e, etag: e.etag, age, cacheStatus }
  }

  #staleIfError(e: Entry, status: number): Served {
    this.stats.stale++
    const ttl = Math.floor((e.ttlMs - (this.#o.now() - e.storedAt)) / 1000)
    return this.#fromEntry(e, 'STALE', `${NAME}; hit; ttl=${ttl}; fwd=miss; fwd-status=${status}; detail=stale-if-error`)
  }

  /** A waiter that joined another request's fill reports that call's budget wait and upstream time. */
  #copyTiming(fill: Fill, req: CacheRequest): void {
    if (req.timing && req.timing !== fill.timing) Object.assign(req.timing, fill.timing)
  }

  /** The one background refresh of a stale entry; for a projection, of the entry it was made from. */
  #refreshStale(k: CacheKey, req: CacheRequest, entry: Entry, ttlMs: number): void {
    this.resources.noteRequest(k)
    const src = this.resources.isDerived(entry) ? this.resources.sourceOf(entry, k, req.rawPath) : undefined
    if (src) {
      if (!this.#fills.get(src.k.key)) this.#background(this.#refresh(src.k, { ...req, rawQuery: src.rawQuery }, ttlMs))
    } else if (!this.#fills.get(k.key)) this.#background(this.#refresh(k, req, ttlMs))
  }

  /** A refresh nobody waits for: #refresh has logged its failure already. */
  #background(p: Promise<unknown>): void {
    p.catch(() => undefined)
  }

  #refresh(k: CacheKey, req: CacheRequest, ttlMs: number): Promise<unknown> {
    this.stats.refreshes++
    // the refresh counts for this request's client, after its answer has gone: its own timing
    const fill = this.#fills.start(k, req, ttlMs, 'background')
    fill.waiters++ // nobody waits, yet the refresh must not be cancelled
    return fill.promise.catch((err: unknown) => this.#o.log.warn({ err, path: k.path }, 'background refresh failed; the stale entry stays'))
  }

  /** One upstream GET for a key: through the other replicas' fill when one is running (Redis lock). */
  async #fetch(job: FetchJob): Promise<Fetched> {
    const { k, fill } = job
    const shared = job.ttlMs !== undefined && this.#o.shared?.up() ? this.#o.shared : undefined
    const lockMs = this.#o.lockMs ?? 60_000
    let locked = false
    if (shared) {
      if (fill) fill.sent = true // another replica's answer may come from before a write: treat as sent
      locked = await shared.lock(k.key, lockMs)
      if (!locked) {
        // another replica is making this call: wait for its entry
        const e = await shared.waitFor(k.key, lockMs)
        if (e && !fill?.invalidated) {
          this.store.set(e)
          this.resources.realStored(e, k)
          return { status: e.status, headers: { ...e.headers }, body: identityBody(e), entry: e }
        }
      }
    }
    let f: Fetched
    try {
      f = await this.#call(job, shared)
    } finally {
      if (locked) await shared!.filled(k.key)
    }
    // a streamed answer flows once every waiter of the fill had its turn to open it (they all
    // resume in this tick's microtasks; nobody opened it: dropped)
    const stream = f.stream
    if (stream) setImmediate(() => stream.start())
    return f
  }

  async #call(job: FetchJob, shared: SharedCache | undefined): Promise<Fetched> {
    const { req, cls, signal, ttlMs, fill, timing } = job
    const answer = await this.#o.upstream.call({
      method: 'GET',
      path: req.rawPath,
      // asked when the call is sent: a queued fill may have been widened meanwhile
      query: fill
        ? () => {
            fill.sent = true
            return fill.rawQuery
          }
        : req.rawQuery,
      // an entry is shared by every client: ask for it the same way whoever asked first
      headers: { accept: 'application/json', 'accept-encoding': 'identity' },
      client: req.client,
      account: req.account,
      timing,
      cls,
      signal,
    })
    // read at most what an entry may hold: a larger answer is streamed through, never held whole
    let read: Awaited<ReturnType<typeof readUpTo>>
    try {
      read = await readUpTo(answer.body, this.#o.maxEntryBytes)
    } catch (err) {
      throw this.#o.upstream.mapError(err, 'GET')
    }
    if (answer.leak.found) {
      // the answer reflected the token: nobody sees it, nothing is stored (SPEC: 502 for cached paths)
      answer.body.destroy()
      throw new UpstreamLeakedToken()
    }
    const k = fill?.k ?? job.k
    const headers = clientResponseHeaders(answer.headers)
    for (const h of NOT_STORED) delete headers[h]
    if (!read.done) {
      // (the token in the part still to come is masked as it streams: upstream/leak.ts)
      return { status: answer.statusCode, headers, body: Buffer.alloc(0), stream: new Fanout(read.chunks, answer.body), entry: undefined }
    }
    const body = Buffer.concat(read.chunks, read.size)
    let entry: Entry | undefined
    if (
      ttlMs &&
      answer.statusCode === 200 &&
      !responseNoStore(answer.headers['cache-control']) &&
      isJson(headers['content-type'], body) &&
      body.length <= this.#o.maxEntryBytes &&
      !fill?.invalidated
    ) {
      entry = makeEntry({
        key: k.key,
        path: k.path,
        includes: k.includes,
        status: 200,
        headers,
        body,
        storedAt: this.#o.now(),
        ttlMs,
        staleMs: this.#o.staleSeconds * 1000,
      })
      // stored at once (identity); the store swaps in the gzip version when the thread pool has it
      this.store.set(entry)
      this.resources.realStored(entry, k)
      this.#fills.release(entry)
      if (shared) await shared.set(await this.store.compressed(entry))
    }
    return { status: answer.statusCode, headers, body, entry }
  }
}
