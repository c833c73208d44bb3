// The first cache tier: lru-cache bounded by bytes (bodies plus headers), with an index by path so
// that evictions touch only the entries they mean.
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { gunzip, gzipIfWorth, IdentityCache, MIN_COMPRESS_BYTES, type Encoding } from './encoding.js'

export interface Entry {
  key: string
  path: string
  includes: readonly string[]
  status: number
  headers: Readonly<Record<string, string | string[]>>
  /** the stored bytes, in `encoding`; identity bytes only through identityBody() */
  body: Buffer
  /** gzip: compressed at rest (see encoding.ts) */
  encoding: Encoding
  /** strong validator of the identity representation, computed once when stored (gzip's: gzipEtag()) */
  etag: string
  storedAt: number
  ttlMs: number
  staleMs: number
  size: number
  /** a projection (resource-aware cache): the includes of the real answer it was made from */
  derivedFrom?: readonly string[]
}

/**
 * An entry from identity bytes (or, with `encoding: 'gzip'`, from stored gzip bytes and the identity
 * ETag). The store compresses identity entries itself (CacheStore.set).
 */
export function makeEntry(fields: Omit<Entry, 'etag' | 'size' | 'encoding'> & { encoding?: Encoding; etag?: string }): Entry {
  const encoding = fields.encoding ?? 'identity'
  if (encoding !== 'identity' && !fields.etag) throw new Error('a compressed entry needs the ETag of its identity bytes')
  const etag = fields.etag ?? `"${createHash('sha1').update(fields.body).digest('base64url')}"`
  return withBody({ ...fields, encoding, etag, headers: internHeaders(fields.headers), size: 0 }, fields.body, encoding)
}

/** The same entry with other stored bytes: an exact-size copy, its size recomputed. */
function withBody(e: Entry, stored: Buffer, encoding: Encoding): Entry {
  const body = own(stored)
  let headerBytes = 0
  for (const k in e.headers) headerBytes += k.length + String(e.headers[k]).length + 4
  // bookkeeping overhead per entry: the key twice (lru + index), the object itself
  const size = Math.max(1, Math.ceil(body.length + headerBytes + e.key.length * 2 + 256))
  return {
    key: e.key,
    path: e.path,
    includes: e.includes,
    status: e.status,
    headers: e.headers,
    body,
    encoding,
    etag: e.etag,
    storedAt: e.storedAt,
    ttlMs: e.ttlMs,
    staleMs: e.staleMs,
    size,
    ...(e.derivedFrom && { derivedFrom: e.derivedFrom }),
  }
}

// Long-lived bodies are packed into slabs of their own: malloc'd one by one, small long-lived bodies
// end up between the short-lived buffers of every miss (upstream chunks, zlib windows) and glibc can
// return none of that memory (RSS grew to 3x the cache under churn; bench/results/2026-11-30-perf.md).
// Entries stored together are evicted together (LRU), so a slab goes back as a whole; a hot entry
// pins its slab until its next refresh. Larger bodies get an exact-size allocation of their own.
// (A small Buffer may also be a slice of Node's shared 8 KiB pool: never kept as is.)
const SLAB_BYTES = 256 * 1024
const SLAB_MAX_BODY = 16 * 1024
let slab: Buffer | undefined
let slabUsed = 0

function own(stored: Buffer): Buffer {
  if (stored.length > SLAB_MAX_BODY) {
    if (stored.byteOffset === 0 && stored.buffer.byteLength === stored.length) return stored
    const body = Buffer.allocUnsafeSlow(stored.length)
    stored.copy(body)
    return body
  }
  if (!slab || slabUsed + stored.length > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES)
    slabUsed = 0
  }
  const body = slab.subarray(slabUsed, slabUsed + stored.length)
  stored.copy(body)
  slabUsed += (stored.length + 7) & ~7
  return body
}

// Identity bytes of recently used compressed entries (one per process; sized by the largest store).
const identity = new IdentityCache(8 * 1024 * 1024)

/**
 * The entry's identity bytes: its body, or its gzip body decompressed (memoised in a small bounded LRU
 * for hot entries). Every reader of an entry's content goes through this function.
 */
export function identityBody(e: Entry): Buffer {
  if (e.encoding !== 'gzip') return e.body
  let body = identity.get(e)
  if (!body) identity.set(e, (body = gunzip(e.body)))
  return body
}

/** The gzip version of an identity entry (the same entry when compressing does not pay). */
export async function compressEntry(e: Entry, wanted?: () => boolean): Promise<Entry> {
  if (e.encoding !== 'identity') return e
  const gz = await gzipIfWorth(e.body, wanted)
  if (!gz) return e
  const next = withBody(e, gz, 'gzip')
  identity.set(next, e.body) // its identity bytes were just used: hot
  return next
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
  /** compress identity entries when stored (default true) */
  compress?: boolean
  /** bytes of the identity side cache (default: 1/32 of maxBytes, at most 4 MiB) */
  identityBytes?: number
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
  readonly #compress: boolean
  readonly #compressing = new WeakMap<Entry, Promise<Entry>>()
  /** compressions that failed (never expected; the identity entry stays) */
  compressFailures = 0

  constructor(o: StoreOptions) {
    this.#now = o.now
    this.#compress = o.compress ?? true
    identity.resize(o.identityBytes ?? Math.min(4 * 1024 * 1024, Math.floor(o.maxBytes / 32)))
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
    if (this.#compress && e.encoding === 'identity' && e.body.length >= MIN_COMPRESS_BYTES) {
      // the disk tier is told once the smaller version is in (or compressing failed): one record, not two
      this.compressed(e, () => this.#lru.peek(e.key, { allowStale: true }) === e).then(
        (gz) => {
          // still the stored entry (not replaced, evicted or expired meanwhile): swap in the smaller one
          if (this.#lru.peek(e.key, { allowStale: true }) !== e) return
          if (gz !== e) this.#lru.set(e.key, gz, { ttl, start: e.storedAt })
          this.observer?.set(gz)
        },
        () => {
          this.compressFailures++
          if (this.#lru.peek(e.key, { allowStale: true }) === e) this.observer?.set(e)
        },
      )
    } else {
      this.observer?.set(e)
    }
  }

  /** The compressed version of an identity entry, compressed once whoever asks (the Redis tier too). */
  compressed(e: Entry, wanted?: () => boolean): Promise<Entry> {
    let p = this.#compressing.get(e)
    if (!p) this.#compressing.set(e, (p = compressEntry(e, wanted)))
    return p
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
