// CACHE_DIR: the directory where the cache and the spent budget outlive the process.
// It is 0700, its files 0600; a lock file says which process writes it (a second process on the same
// directory runs memory-only); every file carries a salted hash of the API URL and the token, never
// the token itself, so that a file is only used by a proxy with the same upstream and token.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { chmodSync, closeSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, utimes, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'

/** Format version of every file in the directory; a file of another version is set aside. */
export const FORMAT_VERSION = 1
const LOCK = 'lock'
/** the lock owner touches the lock this often; a lock untouched for STALE_MS is abandoned */
const HEARTBEAT_MS = 2_000
const STALE_MS = 15_000

export interface Binding {
  salt: Buffer
  hash: Buffer
}

export class CacheDir {
  readonly path: string
  readonly log: FastifyBaseLogger
  /** sha256 of the API URL and token: the token itself is not kept here */
  readonly #secret: Buffer
  readonly #heartbeat: NodeJS.Timeout
  readonly #lockText: string
  #lost = false
  /** called once if another process took the lock over: stop writing */
  onLost: () => void = () => undefined

  private constructor(path: string, secret: Buffer, log: FastifyBaseLogger, lockText: string) {
    this.path = path
    this.log = log
    this.#secret = secret
    this.#lockText = lockText
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS)
    this.#heartbeat.unref()
  }

  /**
   * Creates (0700) and locks the directory. Undefined, with a warning, when it cannot be used: not
   * writable, not a directory, or locked by another live process. Never throws.
   */
  static open(path: string, o: { apiUrl: URL; token: string; log: FastifyBaseLogger }): CacheDir | undefined {
    const { log } = o
    try {
      mkdirSync(path, { recursive: true, mode: 0o700 })
      const st = lstatSync(path)
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
      if ((st.mode & 0o077) !== 0) {
        try {
          chmodSync(path, 0o700)
        } catch {
          log.warn({ cacheDir: path }, 'CACHE_DIR is readable by other users and its mode cannot be changed to 0700')
        }
      }
    } catch (err) {
      log.warn({ cacheDir: path, code: (err as NodeJS.ErrnoException).code }, 'CACHE_DIR cannot be used: running memory-only (nothing survives a restart)')
      return undefined
    }
    const lockText = JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString() })
    const holder = takeLock(join(path, LOCK), lockText)
    if (holder !== true) {
      if (holder instanceof Error) {
        log.warn({ cacheDir: path, code: (holder as NodeJS.ErrnoException).code }, 'CACHE_DIR cannot be used: running memory-only (nothing survives a restart)')
      } else {
        log.warn({ cacheDir: path, holder }, 'CACHE_DIR is in use by another process: this one runs memory-only (nothing survives its restart)')
      }
      return undefined
    }
    return new CacheDir(path, createHash('sha256').update(`${o.apiUrl.href}\n${o.token}`).digest(), log, lockText)
  }

  /** A new binding (fresh salt) for a file written now. */
  newBinding(): Binding {
    const salt = randomBytes(16)
    return { salt, hash: this.#hash(salt) }
  }

  /** Whether a file's binding is this proxy's: same API URL and token. */
  matches(b: Binding): boolean {
    if (b.salt.length !== 16 || b.hash.length !== 32) return false
    return timingSafeEqual(this.#hash(b.salt), b.hash)
  }

  #hash(salt: Buffer): Buffer {
    return createHmac('sha256', salt).update(this.#secret).digest()
  }

  file(name: string): string {
    return join(this.path, name)
  }

  /** Moves a file out of the way (one set-aside copy per file and reason), with a warning. */
  setAside(name: string, reason: string): void {
    const from = this.file(name)
    const to = `${from}.${reason.split(/[^a-z]/)[0] || 'bad'}`
    try {
      renameSync(from, to)
      this.log.warn({ file: from, setAsideAs: to, reason }, 'a CACHE_DIR file cannot be used: set aside, starting without it')
    } catch (err) {
      this.log.warn({ file: from, reason, code: (err as NodeJS.ErrnoException).code }, 'a CACHE_DIR file cannot be used and cannot be set aside: starting without it')
      try {
        unlinkSync(from)
      } catch {
        // nothing more to do
      }
    }
  }

  /** Whether this process still holds the lock. */
  get held(): boolean {
    return !this.#lost
  }

  #beat(): void {
    if (this.#lost) return
    const file = this.file(LOCK)
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      // gone: someone removed it; take it back below
    }
    if (text && text !== this.#lockText) {
      this.#lost = true
      clearInterval(this.#heartbeat)
      this.log.warn({ cacheDir: this.path }, 'another process took over CACHE_DIR: this one stops writing to it and runs memory-only')
      this.onLost()
      return
    }
    if (!text) {
      if (takeLock(file, this.#lockText) !== true) return
    }
    const now = new Date()
    utimes(file, now, now, () => undefined)
  }

  /** Releases the lock (graceful stop). */
  close(): void {
    clearInterval(this.#heartbeat)
    if (this.#lost) return
    try {
      if (readFileSync(this.file(LOCK), 'utf8') === this.#lockText) unlinkSync(this.file(LOCK))
    } catch {
      // already gone
    }
  }
}

/** true: taken. An object: the live holder. An Error: the directory is not writable. */
function takeLock(file: string, text: string): true | Record<string, unknown> | Error {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600)
      try {
        writeSync(fd, text)
      } finally {
        closeSync(fd)
      }
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return err as Error
    }
    let holder: { pid?: number; host?: string } = {}
    let mtime = 0
    try {
      holder = JSON.parse(readFileSync(file, 'utf8')) as typeof holder
      mtime = statSync(file).mtimeMs
    } catch {
      // unreadable or half-written: judged by its age alone
      try {
        mtime = statSync(file).mtimeMs
      } catch {
        continue // gone meanwhile: try again
      }
    }
    if (!isStale(holder, mtime)) return { pid: holder.pid, host: holder.host }
    try {
      // a stale lock goes aside, then O_EXCL again: of two processes racing here, one wins
      renameSync(file, `${file}.stale`)
    } catch {
      // another process moved it first
    }
  }
  return { reason: 'lock contended' }
}

function isStale(holder: { pid?: number; host?: string }, mtime: number): boolean {
  if (holder.host === hostname() && typeof holder.pid === 'number') {
    if (holder.pid === process.pid) return true // our own pid from a previous life (containers restart with the same pid)
    try {
      process.kill(holder.pid, 0)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true
    }
    // alive (or not ours to signal): a live process with a fresh heartbeat holds it
  }
  return Date.now() - mtime > STALE_MS
}

/** Writes a small file atomically: temporary file (0600), then rename over the old one. */
export function writeFileAtomic(path: string, data: string): void {
  const tmp = `${path}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, data)
    if ((fstatSync(fd).mode & 0o077) !== 0) chmodSync(tmp, 0o600)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}
