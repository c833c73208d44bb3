// The first cache tier: lru-cache bounded by bytes (bodies plus headers), with an index by path so
// that evictions touch only the entries they mean.
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'

export interface Entry {
  key: string
  path: string
  includes: readonly string[]
  status: number
  headers: Readonly<Record<string, string | string[]>>
  body: Buffer
  /** strong validator, computed once when stored */
  etag: string
  storedAt: number
  ttlMs: number
  staleMs: number
  size: number
}

export function makeEntry(
  fields: Omit<Entry, 'etag' | 'size'>,
): Entry {
  // A small Buffer is a slice of one of Node's shared 8 KiB pool slabs: kept in the cache, it would
  // keep the whole slab alive. An entry owns an exact-size copy instead.
  const body = Buffer.allocUnsafeSlow(fields.body.length)
  fields.body.copy(body)
  fields = { ...fields, body, headers: internHeaders(fields.headers) }
  const etag = `"${createHash('sha1').update(fields.body).digest('base64url')}"`
  let headerBytes = 0
  for (const [k, v] of Object.entries(fields.headers)) headerBytes += k.length + String(v).length + 4
  // bookkeeping overhead per entry: the key twice (lru + index), the object itself
  const size = Math.max(1, Math.ceil(fields.body.length + headerBytes + fields.key.length * 2 + 256))
  return { ...fields, etag, size }
}

/** An entry's body as JSON bytes (identity encoding), whatever form the store keeps it in. */
export function identityBody(e: Entry): Buffer {
  return e.body
}

// Most answers carry the same few headers: entries share one frozen copy of each distinct set.
const headerSets = new Map<string, Readonly<Record<string, string | string[]>>>()

export function internHeaders(headers: Readonly<Record<string, string | string[]>>): Readonly<Record<string, string | string[]>> {
  const key = JSON.stringify(headers)
  let shared = headerSets.get(key)
  if (!shared) {
    if (headerSets.size >= 1000) headerSets.clear()
    headerSets.set(key, (shared = Object.freeze({ ...headers })))
  }
  return shared
}

/** A tier below memory (the disk, src/cache/persist.ts): told of every change, synchronously. */
export interface StoreObserver {
  set(e: Entry): void
  /** `explicit`: a delete or eviction asked for (a write, a purge), not one of size or age */
  deleted(key: string, explicit: boolean): void
  /** the end of an explicit delete, evict or clear: make it durable before anyone is answered */
  sync(): void
  /** an entry was read (its key's request count, for the warm start's order) */
  read(key: string): void
}

export interface StoreOptions {
  maxBytes: number
  now: () => number
}

/** Whether an includes[] set holds a relation, also nested (customer.phones holds customer). */
export function holdsInclude(includes: readonly string[], name: string): boolean {
  return includes.some((i) => i === name || i.startsWith(name + '.'))
}

export interface EvictFilter {
  match: (path: string) => boolean
  /** only entries whose includes[] set holds this name */
  includes?: string
}

export class CacheStore {
  readonly #lru: LRUCache<string, Entry>
  readonly #byPath = new Map<string, Set<string>>()
  readonly #now: () => number
  /** the disk tier, once it has loaded */
  observer: StoreObserver | undefined
  #quiet = false

  constructor(o: StoreOptions) {
    this.#now = o.now
    this.#lru = new LRUCache<string, Entry>({
      maxSize: o.maxBytes,
      sizeCalculation: (e) => e.size,
      perf: { now: o.now },
      dispose: (e, key, reason) => {
        if (reason === 'set') return // replaced by a newer entry under the same key
        const keys = this.#byPath.get(e.path)
        keys?.delete(key)
        if (keys?.size === 0) this.#byPath.delete(e.path)
        this.observer?.deleted(key, reason === 'delete' && !this.#quiet)
      },
    })
  }

  get entries(): number {
    return this.#lru.size
  }

  get bytes(): number {
    return this.#lru.calculatedSize
  }

  /** The entry, fresh or stale; undefined past its stale window. */
  get(key: string): Entry | undefined {
    const e = this.#lru.get(key)
    if (e && this.#now() >= e.storedAt + e.ttlMs + e.staleMs) {
      this.#quiet = true // past its time: not an eviction the disk must hurry to record
      this.#lru.delete(key)
      this.#quiet = false
      return undefined
    }
    if (e) this.observer?.read(key)
    return e
  }

  set(e: Entry): void {
    const ttl = e.ttlMs + e.staleMs
    if (ttl <= 0) return
    this.#lru.set(e.key, e, { ttl, start: e.storedAt })
    if (!this.#lru.has(e.key)) return // larger than the whole cache
    let keys = this.#byPath.get(e.path)
    if (!keys) this.#byPath.set(e.path, (keys = new Set()))
    keys.add(e.key)
    this.observer?.set(e)
  }

  /** The entry as it is, whatever its age, without touching its recency. */
  peek(key: string): Entry | undefined {
    return this.#lru.peek(key, { allowStale: true })
  }

  /** Every entry, least recently used first (the disk writes them in this order). */
  *oldestFirst(): IterableIterator<Entry> {
    for (const e of this.#lru.rvalues()) if (e) yield e
  }

  delete(key: string): void {
    this.#lru.delete(key)
    this.observer?.sync()
  }

  /** Removes every entry whose path passes the filter; returns how many went. */
  evict(filter: EvictFilter, each?: (e: Entry) => void): number {
    let n = 0
    for (const [path, keys] of [...this.#byPath]) {
      if (!filter.match(path)) continue
      for (const key of [...keys]) {
        const e = this.#lru.peek(key, { allowStale: true })
        if (filter.includes !== undefined && !(e && holdsInclude(e.includes, filter.includes))) continue
        this.#lru.delete(key)
        if (e) each?.(e)
        n++
      }
    }
    if (n) this.observer?.sync()
    return n
  }

  clear(): number {
    const n = this.#lru.size
    this.#lru.clear()
    this.#byPath.clear()
    this.observer?.sync()
    return n
  }
}
