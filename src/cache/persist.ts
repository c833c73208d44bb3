// The disk tier: every entry of the memory cache, kept in CACHE_DIR/cache.log so that a restart
// serves what the last process had, with its stored time (true Age and freshness).
//
// Format: an append-only log. A header (magic, format version, salted hash of the API URL and
// token), then records: length, CRC-32, type, payload. 'E' an entry (its fields as JSON, then the
// body's raw bytes), 'D' a deletion, 'R' request counts (the warm start's order). The last record of
// a key wins. Why a log: entries only come from upstream calls, which the budget bounds (60 a
// minute), so appending costs next to nothing, while a snapshot would rewrite the whole cache.
// The log is compacted (live entries written to a temporary file, fsync, rename) once its dead
// records pass a quarter of CACHE_MAX_BYTES, in the background, in 1 MiB steps.
//
// Timing: new entries are buffered and written once a second (a timer, never the hit path), then
// fdatasync'd in the background, so a hard kill loses at most the last second. A deletion a client
// asked for (a write's eviction, a purge) is written at once, synchronously, before the answer: an
// evicted entry never comes back after a kill. A write error (full disk) removes the file, so that
// what is on disk is never behind an eviction, and the tier retries with a full rewrite later.
import { close, closeSync, fdatasync, fdatasyncSync, fstatSync, fsync, fsyncSync, ftruncateSync, open, openSync, read, readSync, renameSync, unlinkSync, write, writeSync, writev, writevSync } from 'node:fs'
import { promisify } from 'node:util'
import { crc32 } from 'node:zlib'
import type { CacheDir, Binding } from '../cache-dir.js'
import { FORMAT_VERSION } from '../cache-dir.js'
import { internHeaders, type CacheStore, type Entry, type StoreObserver } from './store.js'
import type { FastifyBaseLogger } from 'fastify'

const writevAsync = promisify(writev)
const readAsync = promisify(read)
const writeAsync = promisify(write)

const FILE = 'cache.log'
const MAGIC = Buffer.from('JPPCACHE')
const HEADER = 8 + 4 + 16 + 32
const REC = 9
const T_ENTRY = 0x45
const T_DELETE = 0x44
const T_READS = 0x52
const MAX_RECORD = 1 << 30
/** the CRC-32 of each type byte alone, the start of every record's checksum */
const TYPE_CRC: Record<number, number> = Object.fromEntries([T_ENTRY, T_DELETE, T_READS].map((t) => [t, crc32(Buffer.of(t))]))
/** pause between two 1 MiB steps of a compaction */
const STEP_PAUSE_MS = 20

export interface DiskCacheOptions {
  dir: CacheDir
  store: CacheStore
  maxBytes: number
  now: () => number
  log: FastifyBaseLogger
  /** how often buffered entries are written (1 s) */
  flushMs?: number
}

interface Live {
  e: Entry
  /** where its record starts in the file */
  off: number
  len: number
  crc: number
}

type Op = { e: Entry } | { del: string }

interface Encoded {
  bufs: Buffer[]
  len: number
  key: string
  live?: Live
}

export interface LoadReport {
  entries: number
  bytes: number
  /** stale on arrival: expired while the proxy was down, most-requested first */
  stale: string[]
  ms: number
  /** CPU time of the load (user + system), without the waits of a busy machine */
  cpuMs: number
}

function header(b: Binding): Buffer {
  const h = Buffer.alloc(HEADER)
  MAGIC.copy(h, 0)
  h.writeUInt32LE(FORMAT_VERSION, 8)
  b.salt.copy(h, 12)
  b.hash.copy(h, 28)
  return h
}

function record(type: number, parts: Buffer[]): { bufs: Buffer[]; len: number; crc: number } {
  const head = Buffer.allocUnsafe(REC)
  let len = 0
  for (const p of parts) len += p.length
  head.writeUInt32LE(len, 0)
  head[8] = type
  let crc = crc32(head.subarray(8))
  for (const p of parts) crc = crc32(p, crc)
  head.writeUInt32LE(crc, 4)
  return { bufs: [head, ...parts], len: REC + len, crc }
}

/** An entry's record: every field but the body as JSON (so new fields persist as they are), then the body. */
function encodeEntry(e: Entry): { bufs: Buffer[]; len: number; crc: number } {
  const { body, headers, ...meta } = e
  const m = Buffer.from(JSON.stringify(meta))
  // the headers apart: most entries share a few header sets, which a load then parses once each
  const h = Buffer.from(JSON.stringify(headers))
  const lens = Buffer.allocUnsafe(8)
  lens.writeUInt32LE(m.length, 0)
  lens.writeUInt32LE(h.length, 4)
  return record(T_ENTRY, [lens, m, h, body])
}

/** Buffers inside an entry's other fields come back as Buffers. */
function revive(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
    return Buffer.from((v as { data: number[] }).data)
  }
  return v
}

function decodeEntry(p: Buffer, headerSets: Map<string, Entry['headers']>): Entry {
  const ml = p.readUInt32LE(0)
  const hl = p.readUInt32LE(4)
  if (8 + ml + hl > p.length) throw new Error('bad entry record')
  const text = p.toString('utf8', 8, 8 + ml)
  const meta = (text.includes('"type":"Buffer"') ? JSON.parse(text, revive) : JSON.parse(text)) as Omit<Entry, 'body' | 'headers'>
  const headersText = p.toString('utf8', 8 + ml, 8 + ml + hl)
  let headers = headerSets.get(headersText)
  if (!headers) {
    const parsed = JSON.parse(headersText) as unknown
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('bad entry headers')
    headers = internHeaders(parsed as Entry['headers'])
    if (headerSets.size < 1000) headerSets.set(headersText, headers)
  }
  if (
    typeof meta.key !== 'string' || typeof meta.path !== 'string' || typeof meta.storedAt !== 'number' ||
    typeof meta.ttlMs !== 'number' || typeof meta.staleMs !== 'number' || typeof meta.size !== 'number' ||
    !Array.isArray(meta.includes)
  ) {
    throw new Error('bad entry fields')
  }
  // an exact-size copy: the read buffer is reused
  const start = 8 + ml + hl
  const body = Buffer.allocUnsafeSlow(p.length - start)
  p.copy(body, 0, start)
  return { ...meta, encoding: meta.encoding ?? 'identity', headers, body } as Entry
}

/** Sequential reads of a file in 4 MiB chunks; take(n) returns a view valid until the next take. */
class Reader {
  #buf = Buffer.allocUnsafe(4 << 20)
  #start = 0
  #end = 0
  #pos: number
  constructor(
    private readonly fd: number,
    pos: number,
    private readonly size: number,
  ) {
    this.#pos = pos
  }

  /** bytes consumed from the file so far */
  get offset(): number {
    return this.#pos - (this.#end - this.#start)
  }

  take(n: number): Buffer | undefined {
    if (this.#end - this.#start < n) {
      if (this.offset + n > this.size) return undefined
      if (n > this.#buf.length) {
        const bigger = Buffer.allocUnsafe(n)
        this.#buf.copy(bigger, 0, this.#start, this.#end)
        this.#buf = bigger
      } else {
        this.#buf.copy(this.#buf, 0, this.#start, this.#end)
      }
      this.#end -= this.#start
      this.#start = 0
      while (this.#end < n) {
        const got = readSync(this.fd, this.#buf, this.#end, this.#buf.length - this.#end, this.#pos)
        if (got === 0) return undefined
        this.#end += got
        this.#pos += got
      }
    }
    const view = this.#buf.subarray(this.#start, this.#start + n)
    this.#start += n
    return view
  }
}

class Unusable extends Error {
  constructor(readonly reason: 'corrupt' | 'truncated' | 'foreign', message: string) {
    super(message)
  }
}

export class DiskCache implements StoreObserver {
  readonly #o: DiskCacheOptions
  readonly #file: string
  #fd: number | undefined
  #end = 0
  #live = new Map<string, Live>()
  #liveBytes = 0
  #pending: Op[] = []
  #pendingBytes = 0
  /** request counts: totals as of the last 'R' record, and reads since */
  readonly #reads = new Map<string, number>()
  readonly #readsDelta = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined
  #ticks = 0
  #syncing = false
  #syncAgain = false
  #closeAfterSync: number[] = []
  #retired: number[] = []
  #urgent = false
  #compacting = false
  /** records appended while a compaction runs, for the new file */
  #tail: Encoded[] | undefined
  #failed = false
  #lastFailLog = 0
  #closed = false
  /** figures for /_proxy/status and the bench */
  readonly stats = { writes: 0, bytesWritten: 0, compactions: 0, failures: 0 }

  constructor(o: DiskCacheOptions) {
    this.#o = o
    this.#file = o.dir.file(FILE)
  }

  /** bytes the log holds now */
  get fileBytes(): number {
    return this.#end
  }

  /**
   * Loads the log into the store (expired entries dropped), then starts recording. A file that
   * cannot be used (corrupt, truncated, another version, another API URL or token) is set aside.
   */
  load(): LoadReport {
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    const { store, now } = this.#o
    let loaded = new Map<string, Live>()
    let fd: number | undefined
    try {
      fd = openSync(this.#file, 'r+')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#warn(err, 'cannot open the cache file: starting empty')
    }
    if (fd !== undefined) {
      try {
        const size = fstatSync(fd).size
        loaded = this.#read(fd, size)
        this.#fd = fd
        this.#end = size
      } catch (err) {
        closeSync(fd)
        loaded = new Map()
        this.#reads.clear()
        if (err instanceof Unusable) this.#o.dir.setAside(FILE, `${err.reason}: ${err.message}`)
        else this.#o.dir.setAside(FILE, `corrupt: ${(err as Error).message}`)
      }
    }
    const t = now()
    for (const l of loaded.values()) {
      const e = l.e
      if (t < e.storedAt + e.ttlMs + e.staleMs) store.set(e) // oldest first: the recency order comes back
    }
    const stale: string[] = []
    let bytes = 0
    for (const [key, l] of loaded) {
      if (store.peek(key) !== l.e) continue // expired, or over a smaller CACHE_MAX_BYTES
      this.#live.set(key, l)
      this.#liveBytes += l.len
      bytes += l.e.body.length
      if (t - l.e.storedAt >= l.e.ttlMs) stale.push(key)
    }
    for (const key of this.#reads.keys()) if (!this.#live.has(key)) this.#reads.delete(key)
    stale.sort((a, b) => (this.#reads.get(b) ?? 0) - (this.#reads.get(a) ?? 0))
    if (this.#fd === undefined) this.#create()
    store.observer = this
    this.#timer = setInterval(() => this.#tick(), this.#o.flushMs ?? 1000)
    this.#timer.unref()
    this.#maybeCompact()
    const cpu = process.cpuUsage(cpu0)
    return { entries: this.#live.size, bytes, stale, ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 }
  }

  #read(fd: number, size: number): Map<string, Live> {
    const entries = new Map<string, Live>()
    if (size === 0) throw new Unusable('truncated', 'empty file')
    const r = new Reader(fd, 0, size)
    const h = r.take(HEADER)
    if (!h || !h.subarray(0, 8).equals(MAGIC)) throw new Unusable('corrupt', 'not a cache file')
    const version = h.readUInt32LE(8)
    if (version !== FORMAT_VERSION) throw new Unusable('foreign', `format version ${version}, this proxy reads ${FORMAT_VERSION}`)
    if (!this.#o.dir.matches({ salt: Buffer.from(h.subarray(12, 28)), hash: Buffer.from(h.subarray(28, 60)) })) {
      throw new Unusable('foreign', 'written for another JOBPROGRESS_API_URL or token')
    }
    const headerSets = new Map<string, Entry['headers']>()
    while (r.offset < size) {
      const at = r.offset
      const rh = r.take(REC)
      if (!rh) throw new Unusable('truncated', `a record cut short at byte ${at}`)
      const len = rh.readUInt32LE(0)
      const crc = rh.readUInt32LE(4)
      const type = rh[8]!
      if (len > MAX_RECORD) throw new Unusable('corrupt', `a record of impossible length at byte ${at}`)
      if (at + REC + len > size) throw new Unusable('truncated', `a record cut short at byte ${at}`)
      const p = r.take(len)!
      if (crc32(p, TYPE_CRC[type] ?? crc32(Buffer.of(type))) !== crc) throw new Unusable('corrupt', `a record with a bad checksum at byte ${at}`)
      if (type === T_ENTRY) {
        const e = decodeEntry(p, headerSets)
        entries.delete(e.key) // the last record of a key is its most recent use
        entries.set(e.key, { e, off: at, len: REC + len, crc })
      } else if (type === T_DELETE) {
        const key = p.toString('utf8')
        entries.delete(key)
        this.#reads.delete(key)
      } else if (type === T_READS) {
        for (const [key, n] of JSON.parse(p.toString('utf8')) as Array<[string, number]>) {
          if (typeof key === 'string' && typeof n === 'number') this.#reads.set(key, (this.#reads.get(key) ?? 0) + n)
        }
      } else {
        throw new Unusable('corrupt', `an unknown record type at byte ${at}`)
      }
    }
    return entries
  }

  #create(): void {
    try {
      const fd = openSync(this.#file, 'w+', 0o600)
      const h = header(this.#o.dir.newBinding())
      writevSync(fd, [h], 0)
      fsyncSync(fd)
      this.#fd = fd
      this.#end = HEADER
    } catch (err) {
      this.#fail(err)
    }
  }

  // StoreObserver: called by the store, synchronously.

  set(e: Entry): void {
    if (this.#closed) return
    this.#pending.push({ e })
    this.#pendingBytes += e.body.length
    if (this.#pendingBytes > 4 << 20) setImmediate(() => this.flush())
  }

  deleted(key: string, explicit: boolean): void {
    if (this.#closed) return
    this.#reads.delete(key)
    this.#readsDelta.delete(key)
    this.#pending.push({ del: key })
    if (explicit) this.#urgent = true
  }

  /** An eviction a client asked for is on disk before its answer: it never comes back. */
  sync(): void {
    if (!this.#urgent) return
    this.#urgent = false
    this.flush()
  }

  read(key: string): void {
    this.#readsDelta.set(key, (this.#readsDelta.get(key) ?? 0) + 1)
  }

  /** Writes what is buffered, synchronously (a few µs per KiB: it goes to the page cache). */
  flush(): void {
    if (this.#pending.length === 0) return
    const ops = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    if ((this.#failed || this.#fd === undefined) && !this.#tail) return
    const encoded: Encoded[] = []
    for (const op of ops) {
      if ('e' in op) {
        const r = encodeEntry(op.e)
        encoded.push({ bufs: r.bufs, len: r.len, key: op.e.key, live: { e: op.e, off: 0, len: r.len, crc: r.crc } })
      } else {
        const r = record(T_DELETE, [Buffer.from(op.del)])
        encoded.push({ bufs: r.bufs, len: r.len, key: op.del })
      }
    }
    // a compaction running (also the one that recovers from a failure) takes them into the new file
    this.#tail?.push(...encoded)
    this.#append(encoded)
  }

  #append(encoded: Encoded[]): void {
    if (this.#fd === undefined || this.#failed) return
    const bufs: Buffer[] = []
    let total = 0
    for (const x of encoded) {
      bufs.push(...x.bufs)
      total += x.len
    }
    try {
      for (let i = 0, pos = this.#end; i < bufs.length; ) {
        const chunk = bufs.slice(i, i + 512)
        let want = 0
        for (const b of chunk) want += b.length
        const n = writevSync(this.#fd, chunk, pos)
        if (n !== want) throw Object.assign(new Error('short write'), { code: 'ENOSPC' })
        pos += n
        i += chunk.length
      }
    } catch (err) {
      this.#fail(err)
      return
    }
    let off = this.#end
    for (const x of encoded) {
      if (x.live) x.live.off = off
      off += x.len
    }
    this.#end += total
    this.stats.writes++
    this.stats.bytesWritten += total
    for (const x of encoded) this.#account(this.#live, x)
    this.#syncSoon()
    this.#maybeCompact()
  }

  #account(live: Map<string, Live>, x: Encoded): void {
    const old = live.get(x.key)
    if (old) {
      live.delete(x.key)
      if (live === this.#live) this.#liveBytes -= old.len
    }
    if (x.live) {
      live.set(x.key, x.live)
      if (live === this.#live) this.#liveBytes += x.live.len
    }
  }

  #tick(): void {
    this.flush()
    if (++this.#ticks % 30 === 0) this.#writeReads()
    if (this.#failed && this.#ticks % 30 === 0) this.compact().catch((err: unknown) => this.#warn(err, 'cache file compaction failed'))
  }

  /** The request counts since the last 'R' record. */
  #writeReads(): void {
    if (this.#readsDelta.size === 0) return
    const delta = [...this.#readsDelta]
    this.#readsDelta.clear()
    for (const [k, n] of delta) this.#reads.set(k, (this.#reads.get(k) ?? 0) + n)
    if (this.#failed || this.#fd === undefined) return
    this.flush()
    const r = record(T_READS, [Buffer.from(JSON.stringify(delta))])
    this.#append([{ bufs: r.bufs, len: r.len, key: '' }])
  }

  #syncSoon(): void {
    if (this.#syncing) {
      this.#syncAgain = true
      return
    }
    const fd = this.#fd
    if (fd === undefined) return
    this.#syncing = true
    fdatasync(fd, () => {
      this.#syncing = false
      for (const old of this.#closeAfterSync.splice(0)) closeSync(old)
      if (this.#syncAgain && !this.#closed) {
        this.#syncAgain = false
        this.#syncSoon()
      }
    })
  }

  #fail(err: unknown): void {
    this.stats.failures++
    this.#failed = true
    const now = Date.now()
    if (now - this.#lastFailLog > 60_000) {
      this.#lastFailLog = now
      this.#warn(err, 'cannot write the cache file (full disk?): it is removed so that it never serves evicted entries; the proxy keeps serving from memory and retries every 30 s')
    }
    if (this.#fd !== undefined) {
      try {
        ftruncateSync(this.#fd, HEADER)
      } catch {
        // removed below anyway
      }
      this.#closeFd(this.#fd)
      this.#fd = undefined
    }
    try {
      unlinkSync(this.#file)
    } catch {
      // nothing there
    }
    this.#live.clear()
    this.#liveBytes = 0
  }

  /** closes a file descriptor once no fdatasync or compaction reads it any more */
  #closeFd(fd: number): void {
    if (this.#compacting) this.#retired.push(fd)
    else if (this.#syncing) this.#closeAfterSync.push(fd)
    else closeSync(fd)
  }

  #warn(err: unknown, message: string): void {
    this.#o.log.warn({ file: this.#file, code: (err as NodeJS.ErrnoException)?.code, error: (err as Error)?.message }, message)
  }

  #maybeCompact(): void {
    const dead = this.#end - HEADER - this.#liveBytes
    if (!this.#compacting && !this.#failed && dead > Math.max(1 << 20, this.#o.maxBytes / 4)) this.compact().catch((err: unknown) => this.#warn(err, 'cache file compaction failed'))
  }

  /**
   * Rewrites the log with the live records only: copied byte for byte from the old file to a
   * temporary one in 1 MiB steps by the thread pool (no encoding, the event loop stays free; 20 ms
   * apart, at most 50 MiB/s, so that it takes a share of the CPU and the disk, not all of it), then
   * the records appended meanwhile, fdatasync, and a rename over the log.
   */
  async compact(): Promise<void> {
    if (this.#compacting || this.#closed) return
    this.#compacting = true
    const tmp = `${this.#file}.tmp`
    let fd: number | undefined
    try {
      fd = openSync(tmp, 'w+', 0o600) // read by the next compaction
      this.flush() // before the tail starts: these are in the old file, copied below
      this.#tail = []
      const from = this.#failed ? undefined : this.#fd
      const t = this.#o.now()
      const keep = from === undefined ? [] : [...this.#live.values()].filter((l) => this.#o.store.peek(l.e.key) === l.e && t < l.e.storedAt + l.e.ttlMs + l.e.staleMs)
      keep.sort((a, b) => a.off - b.off)
      const live = new Map<string, Live>()
      await writeAsync(fd, header(this.#o.dir.newBinding()), 0, HEADER, 0)
      let pos = HEADER
      let buf = Buffer.allocUnsafe(1 << 20)
      // runs of records that follow each other in the old file, at most 1 MiB (or one record) each
      for (let i = 0; i < keep.length; ) {
        if (this.#closed) throw new Error('closing')
        const first = keep[i]!
        let end = first.off + first.len
        let j = i + 1
        while (j < keep.length && keep[j]!.off === end && end + keep[j]!.len - first.off <= buf.length) end += keep[j++]!.len
        const n = end - first.off
        if (n > buf.length) buf = Buffer.allocUnsafe(n)
        const got = await readAsync(from!, buf, 0, n, first.off)
        if (got.bytesRead !== n) throw new Error('the cache file changed under the compaction')
        const put = await writeAsync(fd, buf, 0, n, pos)
        if (put.bytesWritten !== n) throw Object.assign(new Error('short write'), { code: 'ENOSPC' })
        for (let k = i; k < j; k++) {
          const l = keep[k]!
          live.set(l.e.key, { ...l, off: pos + (l.off - first.off) })
        }
        pos += n
        i = j
        await new Promise((r) => setTimeout(r, STEP_PAUSE_MS)) // background work: a share of a core, not all of it
      }
      // entries of the store that are not on disk yet (a failed file) go in as new records
      if (from === undefined) {
        for (const e of this.#o.store.oldestFirst()) {
          const r = encodeEntry(e)
          await writevAsync(fd, r.bufs, pos)
          live.set(e.key, { e, off: pos, len: r.len, crc: r.crc })
          pos += r.len
        }
      }
      for (const [k, n] of this.#readsDelta) this.#reads.set(k, (this.#reads.get(k) ?? 0) + n)
      this.#readsDelta.clear()
      const counts = [...this.#reads].filter(([k]) => live.has(k))
      if (counts.length) {
        const r = record(T_READS, [Buffer.from(JSON.stringify(counts))])
        await writevAsync(fd, r.bufs, pos)
        pos += r.len
      }
      await new Promise<void>((resolve, reject) => fdatasync(fd!, (err) => (err ? reject(err) : resolve())))
      if (this.#closed) throw new Error('closing')
      // from here to the rename, synchronous: nothing is appended in between
      this.flush()
      const tail = this.#tail
      this.#tail = undefined
      for (const x of tail) {
        for (const b of x.bufs) pos += writeSync(fd, b, 0, b.length, pos)
        if (x.live) x.live.off = pos - x.len
        this.#account(live, x)
      }
      renameSync(tmp, this.#file)
      // the rename made durable, in the background (some filesystems cannot fsync a directory)
      open(this.#o.dir.path, 'r', (err, dfd) => {
        if (!err) fsync(dfd, () => close(dfd, () => undefined))
      })
      const old = this.#fd
      this.#fd = fd
      fd = undefined
      this.#compacting = false
      if (old !== undefined) this.#closeFd(old)
      this.#end = pos
      this.#live = live
      this.#liveBytes = 0
      for (const l of live.values()) this.#liveBytes += l.len
      if (this.#failed) this.#o.log.info({ file: this.#file }, 'the cache file can be written again')
      this.#failed = false
      this.stats.compactions++
      this.#syncSoon()
    } catch (err) {
      this.#tail = undefined
      if (fd !== undefined) {
        closeSync(fd)
        try {
          unlinkSync(tmp)
        } catch {
          // never created
        }
      }
      this.#compacting = false
      if (!this.#closed && !this.#failed) this.#fail(err)
    } finally {
      this.#compacting = false
      for (const old of this.#retired.splice(0)) this.#closeFd(old)
    }
  }

  /** Graceful stop: everything buffered is written and synced; nothing is lost. */
  close(): void {
    if (this.#closed) return
    clearInterval(this.#timer)
    this.flush()
    this.#writeReads()
    this.#closed = true
    this.#o.store.observer = undefined
    if (this.#fd !== undefined) {
      try {
        fdatasyncSync(this.#fd)
      } catch {
        // nothing more can be done
      }
      this.#closeFd(this.#fd)
      this.#fd = undefined
    }
  }

  /** Another process took the directory over: stop writing, keep serving from memory. */
  detach(): void {
    this.#failed = true
    this.close()
  }
}
