// Entries are kept gzip-compressed ("at rest"): compressed once when stored, in the thread pool after
// the answer is sent (see gzipIfWorth), sent as they are to clients that accept gzip, decompressed
// for the others. A small bounded LRU keeps the identity bytes of recently used entries so that hot
// entries are not decompressed on every identity hit.
import { gunzipSync, gzip } from 'node:zlib'
import { LRUCache } from 'lru-cache'

export type Encoding = 'gzip' | 'identity'

/**
 * Measured on JobProgress-shaped JSON (bench/results/2026-11-30-perf.md): level 6 makes a 47 KB list
 * page 11.3x smaller in 0.7 ms (level 1: 8.9x in 0.2 ms; level 9: 12.4x in 1.4 ms). An entry is
 * compressed once and served many times, and never on a request's path: the default level.
 */
export const GZIP_LEVEL = 6

/** Bodies below this are kept as they are: gzip's 18-byte frame eats the gain. */
export const MIN_COMPRESS_BYTES = 512

/** Kept compressed only when that saves at least this share. */
const MIN_SAVING = 0.1

// Compressions run in the thread pool (zlib's async API: never on the event loop), at most two at once
// (this is a 2-core sidecar; each gzip stream allocates ~260 KiB of zlib state, and many at once under
// a stream of misses fragmented the allocator: RSS grew far past the cache, measured in
// bench/results/2026-11-30-perf.md). An entry that left the cache while waiting is skipped; past
// MAX_WAITING, entries stay identity (they are counted at their identity size, so the bound holds).
// The upstream budget (60 calls a minute) is far below what one compressor does (~1,400 pages a second).
const MAX_RUNNING = 2
const MAX_WAITING = 256
interface Job {
  body: Buffer
  wanted: () => boolean
  resolve: (b: Buffer | undefined) => void
  reject: (err: Error) => void
}
const waiting: Job[] = []
let running = 0

function pump(): void {
  while (running < MAX_RUNNING && waiting.length) {
    const job = waiting.shift()!
    if (!job.wanted()) {
      job.resolve(undefined)
      continue
    }
    running++
    gzip(job.body, { level: GZIP_LEVEL }, (err, out) => {
      running--
      if (err) job.reject(err)
      else job.resolve(out.length <= job.body.length * (1 - MIN_SAVING) ? exact(out) : undefined)
      pump()
    })
  }
}

/** gzip of `body`, off the caller's path; undefined when compressing does not pay or is no longer wanted. */
export function gzipIfWorth(body: Buffer, wanted: () => boolean = () => true): Promise<Buffer | undefined> {
  if (body.length < MIN_COMPRESS_BYTES || waiting.length >= MAX_WAITING) return Promise.resolve(undefined)
  return new Promise((resolve, reject) => {
    waiting.push({ body, wanted, resolve, reject })
    pump()
  })
}

/** An exact-size copy: zlib's output may be a view of a larger buffer. */
function exact(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length) return b
  const out = Buffer.allocUnsafeSlow(b.length)
  b.copy(out)
  return out
}

/** The ETag of the gzip representation of an entry whose identity ETag is `etag`. */
export function gzipEtag(etag: string): string {
  return etag.endsWith('"') ? `${etag.slice(0, -1)}-gz"` : `${etag}-gz`
}

// Accept-Encoding values are few and repeat: each is parsed once.
const accepts = new Map<string, boolean>()

/** Does this Accept-Encoding allow gzip (RFC 9110 12.5.3: gzip, x-gzip or *, with q > 0)? */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false
  let ok = accepts.get(header)
  if (ok === undefined) {
    ok = parseAcceptsGzip(header)
    if (accepts.size >= 200) accepts.clear()
    accepts.set(header, ok)
  }
  return ok
}

function parseAcceptsGzip(header: string): boolean {
  let gz: number | undefined
  let star: number | undefined
  for (const part of header.toLowerCase().split(',')) {
    const [name, ...params] = part.split(';').map((s) => s.trim())
    let q = 1
    for (const p of params) {
      const m = /^q\s*=\s*([0-9.]+)$/.exec(p)
      if (m) q = Number(m[1])
    }
    if (name === 'gzip' || name === 'x-gzip') gz = Math.max(gz ?? 0, q)
    else if (name === '*') star = q
  }
  return (gz ?? star ?? 0) > 0
}

/** gunzip, synchronously (a hit is answered in one tick); for the identity side cache's misses. */
export function gunzip(body: Buffer): Buffer {
  return gunzipSync(body)
}

/**
 * The identity side cache: identity bytes of recently used compressed entries, keyed by the entry
 * object (a replaced entry's bytes just age out), bounded by bytes.
 */
export class IdentityCache {
  #lru: LRUCache<object, Buffer>

  constructor(maxBytes: number) {
    this.#lru = IdentityCache.#make(maxBytes)
  }

  static #make(maxBytes: number): LRUCache<object, Buffer> {
    return new LRUCache<object, Buffer>({ maxSize: Math.max(1, maxBytes), sizeCalculation: (b) => Math.max(1, b.length + 64) })
  }

  resize(maxBytes: number): void {
    this.#lru = IdentityCache.#make(maxBytes)
  }

  get(e: object): Buffer | undefined {
    return this.#lru.get(e)
  }

  set(e: object, body: Buffer): void {
    this.#lru.set(e, body)
  }

  delete(e: object): void {
    this.#lru.delete(e)
  }

  get bytes(): number {
    return this.#lru.calculatedSize
  }
}
