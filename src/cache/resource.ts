// The resource-aware part of the cache (README "Resource-aware caching"): which stored answers hold
// the answer to another includes[] variant, the projections made from them, the checks that keep
// them honest, widening, and the plain entries refreshed by writes. http-cache.ts calls in here at
// its few decision points; the fills themselves stay there.
import type { FastifyBaseLogger } from 'fastify'
import type { CacheKey } from './key.js'
import { baseOf, covers, includesInOrder, project, routeOf, sameAnswer, understood, withIncludes } from './projection.js'
import type { CacheRules, Lever } from './rules.js'
import { identityBody, makeEntry, type CacheStore, type Entry } from './store.js'
import { Verifier } from './verify.js'
import { Widener } from './widen.js'
import { WriteRefresh } from './write-refresh.js'

export interface ResourceStats {
  /** answers served as a projection of a wider entry (hits, and misses answered by a wider fill) */
  projected: number
  /** misses that joined a fill in flight whose includes covered theirs */
  joined: number
  /** fills still queued that were widened for a newcomer */
  queue_widened: number
  /** waiters answered from the store while their fill was still queued */
  released: number
  /** misses that asked upstream for more includes than requested */
  widened: number
  /** plain entries stored from a write's own answer */
  write_refreshed: number
  /** entries evicted for one relation a write changed, kept as their projection without it */
  narrowed: number
}

const MAX_BASES = 50_000

export class Resources {
  readonly stats: ResourceStats = { projected: 0, joined: 0, queue_widened: 0, released: 0, widened: 0, write_refreshed: 0, narrowed: 0 }
  readonly verifier: Verifier
  readonly widener: Widener
  readonly writes = new WriteRefresh()
  readonly #store: CacheStore
  readonly #now: () => number
  /**
   * base (key without includes) -> keys of entries projections can be made from, with their includes.
   * A short array, not a Map: most bases have one or two keys, and a Map costs ~240 bytes of heap.
   */
  readonly #sources = new Map<string, Array<[key: string, includes: readonly string[]]>>()
  /** projections: the includes of the entry they were made from */
  /** route -> keys of projections stored, to drop them if the route's projection is turned off */
  readonly #derivedKeys = new Map<string, Set<string>>()
  readonly #overflowed = new Set<string>()

  constructor(o: { store: CacheStore; rules: CacheRules; now: () => number; log: FastifyBaseLogger }) {
    this.#store = o.store
    this.#now = o.now
    this.verifier = new Verifier({ rules: o.rules, log: o.log })
    this.widener = new Widener(o.now)
    this.verifier.onDisabled = (lever, route) => {
      if (lever === 'projection') this.#dropProjections(route)
      this.onDisabled(lever, route)
    }
  }

  /** Set by metrics: called once per lever and route turned off. */
  onDisabled: (lever: Lever, route: string) => void = () => undefined

  on(lever: Lever, path: string): boolean {
    return this.verifier.allows(lever, routeOf(path), path)
  }

  isDerived(e: Entry): boolean {
    return e.derivedFrom !== undefined
  }

  /** The key a stale projection's source would be refreshed under. */
  sourceOf(e: Entry, k: CacheKey, rawPath: string): { k: CacheKey; rawQuery: string } | undefined {
    const inc = e.derivedFrom
    return inc ? withIncludes(rawPath, baseOf(k).other, inc) : undefined
  }

  /** A miss (or stale) on k: remember its includes for widening. */
  noteRequest(k: CacheKey): void {
    if (k.includes.length && understood(k)) this.widener.note(routeOf(k.path), k.includes)
  }

  /** The includes a miss on k should ask upstream for. */
  widen(k: CacheKey, ttlMs: number): readonly string[] {
    if (!understood(k) || !this.on('widening', k.path)) return k.includes
    const inc = this.widener.widen(routeOf(k.path), k.includes, ttlMs)
    if (inc.length !== k.includes.length) this.stats.widened++
    return inc
  }

  /** A fresh projection for k from a fresh real entry that covers it; stored as its own entry. */
  fromStore(k: CacheKey, rawQuery: string): Entry | undefined {
    const sources = this.#sources.get(baseOf(k).base)
    if (!sources || !understood(k) || !this.on('projection', k.path)) return undefined
    const now = this.#now()
    let best: Entry | undefined
    for (let i = sources.length - 1; i >= 0; i--) {
      const [key, inc] = sources[i]!
      if (key === k.key || !covers(inc, k.includes)) continue
      const e = this.#store.get(key)
      if (!e || e.includes.join() !== inc.join()) {
        if (!e) sources.splice(i, 1)
        continue
      }
      if (now - e.storedAt >= e.ttlMs) continue
      if (!best || e.includes.length < best.includes.length) best = e
    }
    return best && this.fromEntry(best, k, rawQuery)
  }

  /** The projection of a real entry for k, stored; undefined when the entry's shape does not allow it. */
  fromEntry(src: Entry, k: CacheKey, rawQuery: string): Entry | undefined {
    if (src.key === k.key) return src
    if (!understood(k)) return undefined
    const body = project(identityBody(src), src.includes, k.includes, includesInOrder(rawQuery))
    if (!body) return undefined
    const e = makeEntry({
      key: k.key,
      path: k.path,
      includes: k.includes,
      status: src.status,
      headers: src.headers,
      body,
      storedAt: src.storedAt,
      ttlMs: src.ttlMs,
      staleMs: src.staleMs,
      derivedFrom: src.derivedFrom ?? src.includes,
    })
    this.#store.set(e)
    this.#remember(e)
    this.stats.projected++
    return e
  }

  /** A projection stored: dropped if its route's projection is turned off. */
  #remember(e: Entry): void {
    const route = routeOf(e.path)
    let keys = this.#derivedKeys.get(route)
    if (!keys) this.#derivedKeys.set(route, (keys = new Set()))
    if (keys.size >= 10_000)
      this.#overflowed.add(route) // too many to track: all of the route goes
    else keys.add(e.key)
  }

  /** A real answer from upstream was stored: index it, learn from it, and check projections against it. */
  realStored(e: Entry, k: CacheKey): void {
    if (!understood(k)) return
    this.#index(e, k)
    const real = this.#sources.get(baseOf(k).base)!
    const body = identityBody(e)
    if (e.includes.length === 0) {
      this.writes.learn(k, body, e.headers)
      const refreshed = this.writes.take(e.path)
      if (refreshed && !sameAnswer(refreshed, body)) {
        this.verifier.disable('write-refresh', routeOf(k.path), 'a plain entry stored from a write answer differed from the next real answer')
      }
    }
    const route = routeOf(k.path)
    if (!this.verifier.wants(route)) return
    const now = this.#now()
    for (const [key, inc] of real) {
      if (key === e.key || !this.verifier.wants(route)) continue
      const wider = covers(inc, e.includes)
      const narrower = covers(e.includes, inc)
      if (!wider && !narrower) continue
      const other = this.#store.get(key)
      if (!other || other.derivedFrom !== undefined || now - other.storedAt >= other.ttlMs) continue
      const [w, n] = wider ? [other, e] : [e, other]
      const projected = project(identityBody(w), w.includes, n.includes)
      if (!projected) continue // not a shape projection would serve either
      this.verifier.record(route, sameAnswer(projected, identityBody(n)), `${w.key} -> ${n.key}`)
    }
  }

  /**
   * `e` was evicted because a write changed one relation it includes (a link rule with ?includes=):
   * the rest of it is still right, so its projection without that relation is kept as an entry
   * (and as a source for narrower projections), unless the route's projections are not trusted.
   */
  withoutRelation(e: Entry, relation: string): void {
    if (!this.on('projection', e.path) || this.#now() - e.storedAt >= e.ttlMs) return
    const narrow = e.includes.filter((i) => i !== relation && !i.startsWith(relation + '.'))
    const source = e.derivedFrom ?? e.includes
    const rawPath = e.path.split('/').map(encodeURIComponent).join('/')
    const { k: nk } = withIncludes(rawPath, baseOf(e).other, narrow)
    if (nk.path !== e.path || this.#store.get(nk.key)) return
    const body = project(identityBody(e), e.includes, narrow)
    if (!body) return
    const p = makeEntry({ key: nk.key, path: e.path, includes: narrow, status: e.status, headers: e.headers, body, storedAt: e.storedAt, ttlMs: e.ttlMs, staleMs: e.staleMs, derivedFrom: source })
    this.#store.set(p)
    this.#remember(p)
    this.#index(p, nk)
    this.stats.narrowed++
  }

  /** Makes an entry a source of projections for its base. */
  #index(e: Entry, k: CacheKey): void {
    const { base } = baseOf(k)
    const m = this.#sources.get(base)
    if (!m) {
      if (this.#sources.size >= MAX_BASES) this.#sources.clear()
      this.#sources.set(base, [[e.key, e.includes]]) // (a literal is allocated at its size; [].push grows to 17)
      return
    }
    const i = m.findIndex(([key]) => key === e.key)
    if (i >= 0) m[i] = [e.key, e.includes]
    else m.push([e.key, e.includes])
  }

  #dropProjections(route: string): void {
    for (const key of this.#derivedKeys.get(route) ?? []) {
      const e = this.#store.get(key)
      if (e?.derivedFrom) this.#store.delete(key)
    }
    this.#derivedKeys.delete(route)
    if (this.#overflowed.delete(route)) this.#store.evict({ match: (p) => routeOf(p) === route })
  }

  status(): { stats: ResourceStats; verified: Record<string, { checked: number; matched: number }>; disabled: ReturnType<Verifier['status']>['disabled'] } {
    return { stats: this.stats, ...this.verifier.status() }
  }
}
