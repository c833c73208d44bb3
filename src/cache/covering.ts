// Fills: the upstream calls that fill the cache, and who waits for them. Identical misses share one
// fill (coalescing). Resource-aware (covering): a miss joins a fill whose includes cover its own; a fill
// still queued for the budget widens to the union of its waiters' includes; a waiter whose answer
// reaches the store while its fill is queued leaves at once (the last one to leave drops the call).
import { newTiming, type CallTiming } from '../upstream/accounting.js'
import type { Fanout } from './fanout.js'
import type { CacheRequest } from './http-cache.js'
import type { CacheKey } from './key.js'
import { baseOf, covers, includesInOrder, project, understood, withIncludes } from './projection.js'
import type { Resources } from './resource.js'
import { identityBody, type Entry } from './store.js'
import { MAX_NAMES } from './widen.js'

export interface Fetched {
  status: number
  headers: Record<string, string | string[]>
  body: Buffer
  /** instead of body: an answer larger than an entry may be, streamed to each waiter */
  stream?: Fanout
  entry: Entry | undefined
}

export interface FetchJob {
  k: CacheKey
  req: CacheRequest
  cls: 'read' | 'background'
  signal: AbortSignal
  /** the entry's TTL; undefined: pass the answer on, never store it (bypass) */
  ttlMs: number | undefined
  fill?: Fill
  timing?: CallTiming
}

export interface Fill {
  promise: Promise<Fetched>
  controller: AbortController
  waiters: number
  /** a write touched this key after the call was sent: answer the waiters, do not store */
  invalidated: boolean
  path: string
  /** what the call asks for; a fill still queued may be widened (resource-aware: covering fills) */
  k: CacheKey
  includes: readonly string[]
  rawPath: string
  rawQuery: string
  /** the key without includes, and its query part */
  base: string
  other: string
  cls: 'read' | 'background'
  /** the call has gone out (a write's answer after this spoils it; before, the call sees the write) */
  sent: boolean
  /** waiters that may be answered from the store before the call is sent */
  listeners: Set<FillWaiter>
  /** never widened: the exact call made when a wider answer could not be projected */
  exact: boolean
  /** the budget wait and upstream time of the call, for every waiter's Server-Timing */
  timing: CallTiming
}

export interface FillWaiter {
  k: CacheKey
  rawQuery: string
  early: (e: Entry) => void
}

export type Joined = Fetched | { early: Entry }

export class Fills {
  readonly #inflight = new Map<string, Fill>()
  /** fills in flight by base (key without includes) */
  readonly #byBase = new Map<string, Set<Fill>>()
  readonly #res: Resources
  readonly #run: (job: FetchJob) => Promise<Fetched>
  /** distributed mode: a fill's key is its Redis lock's, so queued fills are not widened */
  readonly #distributed: boolean

  constructor(o: { resources: Resources; run: (job: FetchJob) => Promise<Fetched>; distributed: boolean }) {
    this.#res = o.resources
    this.#run = o.run
    this.#distributed = o.distributed
  }

  get size(): number {
    return this.#inflight.size
  }

  /** The fill whose call asks for exactly this key. */
  get(key: string): Fill | undefined {
    return this.#inflight.get(key)
  }

  values(): IterableIterator<Fill> {
    return this.#inflight.values()
  }

  /** A fill for k; `includes` (widening) asks upstream for more than k's includes. */
  start(k: CacheKey, req: CacheRequest, ttlMs: number, cls: 'read' | 'background', timing: CallTiming = newTiming(), includes?: readonly string[]): Fill {
    const { base, other } = baseOf(k)
    let fk = k
    let rawQuery = req.rawQuery
    if (includes && includes.join() !== k.includes.join()) {
      ;({ k: fk, rawQuery } = withIncludes(req.rawPath, other, includes))
      const running = this.#inflight.get(fk.key)
      if (running) return running
    }
    const controller = new AbortController()
    const fill: Fill = {
      controller,
      waiters: 0,
      invalidated: false,
      path: k.path,
      k: fk,
      includes: fk.includes,
      rawPath: req.rawPath,
      rawQuery,
      base,
      other,
      cls,
      sent: false,
      listeners: new Set(),
      exact: false,
      timing,
      promise: undefined!,
    }
    fill.promise = this.#run({ k: fk, req: { ...req, rawQuery }, cls, signal: controller.signal, ttlMs, fill, timing }).finally(() => {
      if (this.#inflight.get(fill.k.key) === fill) this.#inflight.delete(fill.k.key)
      const set = this.#byBase.get(base)
      set?.delete(fill)
      if (set?.size === 0) this.#byBase.delete(base)
    })
    fill.promise.catch(() => undefined) // waiters that left early do not listen any more
    this.#inflight.set(fk.key, fill)
    let set = this.#byBase.get(base)
    if (!set) this.#byBase.set(base, (set = new Set()))
    set.add(fill)
    return fill
  }

  /**
   * Waits for a fill; a waiter that leaves gives up its share, the last one cancels a queued call.
   * A waiter whose answer reaches the store while the call is still queued is answered at once.
   */
  join(fill: Fill, signal: AbortSignal, k: CacheKey, rawQuery: string): Promise<Joined> {
    fill.waiters++
    return new Promise<Joined>((resolve, reject) => {
      let gone = false
      const leave = () => {
        if (gone) return
        gone = true
        fill.listeners.delete(w)
        signal.removeEventListener('abort', leave)
        if (--fill.waiters === 0) fill.controller.abort()
      }
      const w: FillWaiter = {
        k,
        rawQuery,
        early: (e) => {
          leave()
          resolve({ early: e })
        },
      }
      signal.addEventListener('abort', leave, { once: true })
      fill.listeners.add(w)
      fill.promise.then(
        (f) => {
          fill.listeners.delete(w)
          signal.removeEventListener('abort', leave)
          resolve(f)
        },
        (err: unknown) => {
          fill.listeners.delete(w)
          signal.removeEventListener('abort', leave)
          reject(err)
        },
      )
    })
  }

  /** A fill in flight whose answer holds k's (join it), or one still queued that can be widened to. */
  covering(k: CacheKey): Fill | undefined {
    const fills = this.#byBase.get(baseOf(k).base)
    if (!fills || !understood(k) || !this.#res.on('covering', k.path)) return undefined
    let queued: Fill | undefined
    for (const f of fills) {
      if (f.invalidated) continue
      // (a background refresh still queued would make a read wait behind every read: not joined)
      if (covers(f.includes, k.includes) && (f.sent || f.cls === 'read')) {
        this.#res.stats.joined++
        return f
      }
      if (!f.sent && !f.exact && f.cls === 'read' && !this.#distributed) queued ??= f
    }
    if (!queued) return undefined
    const union = [...new Set([...queued.includes, ...k.includes])].sort()
    if (union.length > MAX_NAMES || !covers(union, k.includes) || !covers(union, queued.includes)) return undefined
    const { k: wk, rawQuery } = withIncludes(queued.rawPath, queued.other, union)
    if (this.#inflight.has(wk.key)) return undefined
    if (this.#inflight.get(queued.k.key) === queued) this.#inflight.delete(queued.k.key)
    queued.k = wk
    queued.includes = wk.includes
    queued.rawQuery = rawQuery
    this.#inflight.set(wk.key, queued)
    this.#res.stats.queue_widened++
    return queued
  }

  /**
   * k's answer from a wider fill's: its projection; or k's own call when the wider answer is not a
   * 200 or its shape does not allow a projection.
   */
  async narrow(fetched: Fetched, wide: readonly string[], k: CacheKey, req: CacheRequest, ttlMs: number): Promise<Fetched> {
    // (an error may come from a relation this request did not ask for: it asks for its own below)
    if (fetched.status === 200 && fetched.entry) {
      const p = this.#res.fromEntry(fetched.entry, k, req.rawQuery)
      if (p) return { status: 200, headers: p.headers, body: identityBody(p), entry: p }
    } else if (fetched.status === 200) {
      const body = project(fetched.body, wide, k.includes, includesInOrder(req.rawQuery))
      if (body) {
        this.#res.stats.projected++
        return { ...fetched, body }
      }
    }
    let own = this.#inflight.get(k.key)
    if (!own || own.k.key !== k.key || !own.exact) {
      own = this.start(k, req, ttlMs, 'read')
      own.exact = true
    }
    const joined = await this.join(own, req.signal(), k, req.rawQuery)
    if ('early' in joined) return { status: 200, headers: joined.early.headers, body: identityBody(joined.early), entry: joined.early }
    return joined
  }

  /** An entry was stored: waiters of queued fills it answers leave the queue with it. */
  release(e: Entry): void {
    const fills = this.#byBase.get(baseOf(e).base)
    if (!fills) return
    for (const f of [...fills]) {
      if (f.sent) continue
      for (const w of [...f.listeners]) {
        if (!covers(e.includes, w.k.includes)) continue
        if (e.key !== w.k.key && !this.#res.on('covering', w.k.path)) continue
        const p = this.#res.fromEntry(e, w.k, w.rawQuery)
        if (!p) continue
        this.#res.stats.released++
        w.early(p)
      }
    }
  }
}
