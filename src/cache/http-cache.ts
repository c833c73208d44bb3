// Cache policy for GET (and HEAD): fresh hits, coalesced misses, stale-while-revalidate,
// stale-if-error, client directives, and precise eviction after writes. HTTP is the route's job;
// this file decides what to answer.
import type { Readable } from 'node:stream'
import { NotCached, QueueFull, QueueTimeout, UpstreamTimeout, UpstreamUnreachable } from '../errors.js'
import { requestDirectives, type RequestDirectives } from './directives.js'
import { cacheKey, type CacheKey } from './key.js'
import { Fills, type Fetched, type Fill } from './covering.js'
import { fetchFill, type FillContext } from './fill.js'
import { evict as evictFilters, invalidate, invalidationFilters, type InvalidationContext } from './invalidation.js'
import { KeyMemo } from './key-memo.js'
import { Resources } from './resource.js'
import { isStorable } from './storable.js'
import { CacheStore, makeEntry, type Entry, type EvictFilter } from './store.js'
import type { CacheRequest, CacheResult, CacheStats, HttpCacheOptions, Invalidation, Served } from './types.js'

export type { CacheRequest, CacheResult, CacheStats, HttpCacheOptions, Invalidation, Served, SharedCache } from './types.js'
export { KEY_MEMO_BYTES } from './key-memo.js'

const NAME = 'jobprogress-proxy'

/** errors and answers that let a stale entry stand in (docs/contract.md: stale-if-error) */
function isFailure(err: unknown): boolean {
  return err instanceof UpstreamUnreachable || err instanceof UpstreamTimeout || err instanceof QueueFull || err instanceof QueueTimeout
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
  readonly #keys: KeyMemo
  /** what the upstream fill (fill.ts) and invalidation (invalidation.ts) work on */
  readonly #fill: FillContext
  readonly #inv: InvalidationContext

  constructor(o: HttpCacheOptions) {
    this.#o = o
    this.store = o.store
    this.#keys = new KeyMemo(o.rules, o.ttlSeconds)
    this.resources = new Resources({ store: o.store, rules: o.rules, now: o.now, log: o.log })
    this.#fills = new Fills({ resources: this.resources, run: (job) => fetchFill(this.#fill, job), distributed: !!o.shared })
    this.#fill = { o, store: o.store, resources: this.resources, fills: this.#fills }
    this.#inv = { store: o.store, resources: this.resources, fills: this.#fills, rules: o.rules, shared: o.shared, stats: this.stats }
  }

  /** bytes held by the URL -> key memo (estimated), at most KEY_MEMO_BYTES */
  get keyMemoBytes(): number {
    return this.#keys.bytes
  }

  get inflight(): number {
    return this.#fills.size
  }

  /**
   * The answer from the store alone, synchronously: a fresh HIT, or a STALE one (starting the one
   * background refresh). Undefined when an upstream call is needed: then call get().
   */
  lookup(req: CacheRequest): Served | undefined {
    const { k, ttlMs } = this.#keys.keyOf(req.rawPath, req.rawQuery)
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
    const { k, ttlMs } = this.#keys.keyOf(rawPath, rawQuery)
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
    const { k, ttlMs } = this.#keys.keyOf(req.rawPath, req.rawQuery)
    const dir = requestDirectives(req.cacheControl)
    if (dir.noStore || ttlMs === 0) {
      if (dir.onlyIfCached) throw new NotCached()
      this.stats.bypass++
      const f = await fetchFill(this.#fill, { k, req, cls: 'read', signal: req.signal(), ttlMs: undefined, timing: req.timing })
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
    if (!r || !this.resources.on('write-refresh', r.path)) return n
    const { k, ttlMs } = this.#keys.keyOf(method === 'POST' ? `${rawPath}/${r.path.split('/').pop()}` : rawPath, '')
    if (k.path !== r.path) return n
    // the write's answer, in the shape of a stored entry of the route: JSON already
    if (!isStorable({ ttlMs, status: 200, cacheControl: r.headers['cache-control'], contentType: r.headers['content-type'], body: r.body, maxEntryBytes: this.#o.maxEntryBytes, knownJson: true }))
      return n
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
    return invalidate(this.#inv, { op: 'write', path: cacheKey(rawPath, '').path })
  }

  /** DELETE /_proxy/cache: everything, or one subtree. */
  async purge(prefix?: string): Promise<number> {
    return invalidate(this.#inv, { op: 'purge', prefix })
  }

  /** An invalidation another replica published: this replica's first tier only. */
  applyRemote(inv: Invalidation): number {
    return evictFilters(this.#inv, invalidationFilters(inv, this.#o.rules))
  }

  /** Applies eviction filters to the store and to fills in flight. */
  evict(filters: EvictFilter[]): number {
    return evictFilters(this.#inv, filters)
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
}
