// The disk tier: every entry of the memory cache, kept in CACHE_DIR/cache.log so that a restart
// serves what the last process had, with its stored time (true Age and freshness).
//
// Format: an append-only log of records (persist-format.ts); the last record of a key wins. Why a
// log: entries only come from upstream calls, which the budget bounds (60 a minute), so appending costs next to nothing, while a snapshot would rewrite the whole cache.
// The log is compacted (live entries written to a temporary file, fsync, rename) once its dead
// records pass a quarter of CACHE_MAX_BYTES, in the background, in 1 MiB steps.
//
// Timing: new entries are buffered and written once a second (a timer, never the hit path), then
// fdatasync'd in the background, so a hard kill loses at most the last second. A deletion a client
// asked for (a write's eviction, a purge) is written at once, synchronously, before the answer: an
// evicted entry never comes back after a kill. A write error (full disk) removes the file, so that
// what is on disk is never behind an eviction, and the tier retries with a full rewrite later.
import { close, closeSync, fdatasync, fdatasyncSync, fsync, fsyncSync, ftruncateSync, open, openSync, renameSync, unlinkSync, writeSync, writevSync } from 'node:fs'
import type { CacheDir } from '../cache-dir.js'
import type { CacheStore, Entry, StoreObserver } from './store.js'
import type { FastifyBaseLogger } from 'fastify'
import { HEADER, T_DELETE, T_READS, encodeEntry, header, record, type Encoded, type Live, type Op } from './persist-format.js'
import { openLog } from './persist-reader.js'
import { writeAllSync, writeCountsAndSync, writeLive } from './persist-compact.js'

const FILE = 'cache.log'

export interface DiskCacheOptions {
  dir: CacheDir
  store: CacheStore
  maxBytes: number
  now: () => number
  log: FastifyBaseLogger
  /** how often buffered entries are written (1 s) */
  flushMs?: number
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
    const opened = openLog(this.#o.dir, FILE, this.#reads, (err, message) => this.#warn(err, message))
    const loaded = opened.loaded
    if (opened.fd !== undefined) {
      this.#fd = opened.fd
      this.#end = opened.size
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
      writeAllSync(this.#fd, bufs, this.#end)
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
      const written = await writeLive(fd, header(this.#o.dir.newBinding()), from, keep, from === undefined ? () => this.#o.store.oldestFirst() : undefined, () => this.#closed)
      const live = written.live
      let pos = written.pos
      for (const [k, n] of this.#readsDelta) this.#reads.set(k, (this.#reads.get(k) ?? 0) + n)
      this.#readsDelta.clear()
      pos = await writeCountsAndSync(
        fd,
        [...this.#reads].filter(([k]) => live.has(k)),
        pos,
      )
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
