// Reading the disk tier's log (persist-format.ts) back at a start: a sequential reader and the record loop.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import type { CacheDir } from '../cache-dir.js'
import { FORMAT_VERSION } from '../cache-dir.js'
import type { Entry } from './store.js'
import { HEADER, MAGIC, MAX_RECORD, REC, TYPE_CRC, T_DELETE, T_ENTRY, T_READS, decodeEntry, type Live } from './persist-format.js'

/** Sequential reads of a file in 4 MiB chunks; take(n) returns a view valid until the next take. */
export class Reader {
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

export class Unusable extends Error {
  constructor(
    readonly reason: 'corrupt' | 'truncated' | 'foreign',
    message: string,
  ) {
    super(message)
  }
}

/**
 * The live entries of the log in `fd` (`size` bytes), oldest use first; the request counts of its
 * 'R' records are added to `reads`. Throws Unusable for a file that cannot be used.
 */
export function readLog(fd: number, size: number, dir: CacheDir, reads: Map<string, number>): Map<string, Live> {
  const entries = new Map<string, Live>()
  if (size === 0) throw new Unusable('truncated', 'empty file')
  const r = new Reader(fd, 0, size)
  const h = r.take(HEADER)
  if (!h || !h.subarray(0, 8).equals(MAGIC)) throw new Unusable('corrupt', 'not a cache file')
  const version = h.readUInt32LE(8)
  if (version !== FORMAT_VERSION) throw new Unusable('foreign', `format version ${version}, this proxy reads ${FORMAT_VERSION}`)
  if (!dir.matches({ salt: Buffer.from(h.subarray(12, 28)), hash: Buffer.from(h.subarray(28, 60)) })) {
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
      reads.delete(key)
    } else if (type === T_READS) {
      for (const [key, n] of JSON.parse(p.toString('utf8')) as Array<[string, number]>) {
        if (typeof key === 'string' && typeof n === 'number') reads.set(key, (reads.get(key) ?? 0) + n)
      }
    } else {
      throw new Unusable('corrupt', `an unknown record type at byte ${at}`)
    }
  }
  return entries
}

/**
 * Opens the log `name` of `dir` and reads it (request counts into `reads`). A file that cannot be
 * used is set aside: then no fd, nothing loaded, no counts. A missing file is no warning.
 */
export function openLog(dir: CacheDir, name: string, reads: Map<string, number>, warn: (err: unknown, message: string) => void): { fd?: number; size: number; loaded: Map<string, Live> } {
  let fd: number | undefined
  try {
    fd = openSync(dir.file(name), 'r+')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') warn(err, 'cannot open the cache file: starting empty')
  }
  if (fd !== undefined) {
    try {
      const size = fstatSync(fd).size
      return { fd, size, loaded: readLog(fd, size, dir, reads) }
    } catch (err) {
      closeSync(fd)
      reads.clear()
      if (err instanceof Unusable) dir.setAside(name, `${err.reason}: ${err.message}`)
      else dir.setAside(name, `corrupt: ${(err as Error).message}`)
    }
  }
  return { size: 0, loaded: new Map() }
}
