// The spent budget across restarts: CACHE_DIR/budget holds the slots of the sliding window that are
// still out (when each comes back), the calls in flight and a 429 pause in force. A restarted proxy
// takes those slots out of its reservoir and gives each back at its time: its first calls wait for
// the window exactly as if it had not stopped. Not used in distributed mode (the budget is in Redis).
//
// Written at every change (a call starts or ends, a pause, a correction), at most every 20 ms, as a
// small JSON file replaced atomically (temporary file, rename): a hard kill loses at most 20 ms of
// call starts. Calls in flight when the process died come back at the latest time they could:
// min(saved + UPSTREAM_TIMEOUT_MS, restart) + window.
import { readFileSync } from 'node:fs'
import type Bottleneck from 'bottleneck'
import type { FastifyBaseLogger } from 'fastify'
import { FORMAT_VERSION, writeFileAtomic, type Binding, type CacheDir } from '../cache-dir.js'
import type { SlotStore } from './slots.js'

const FILE = 'budget'
const BUCKET_MS = 100
const MIN_INTERVAL_MS = 20

export interface SavedBudget {
  /** slots out of the reservoir now */
  spent: number
  /** [time, slots]: when they come back, oldest first */
  returns: Array<[number, number]>
  pausedUntil: number
}

interface FileShape {
  v: number
  salt: string
  hash: string
  limit: number
  windowMs: number
  savedAt: number
  pausedUntil: number
  inflight: number
  returns: Array<[number, number]>
}

export interface BudgetFileOptions {
  limit: number
  windowMs: number
  timeoutMs: number
  log: FastifyBaseLogger
}

export class BudgetFile {
  readonly #dir: CacheDir
  readonly #o: BudgetFileOptions
  readonly #binding: Binding

  constructor(dir: CacheDir, o: BudgetFileOptions) {
    this.#dir = dir
    this.#o = o
    this.#binding = dir.newBinding()
  }

  /** What the last process left: the slots still out and the pause. A bad file is set aside. */
  load(now = Date.now()): SavedBudget {
    const empty: SavedBudget = { spent: 0, returns: [], pausedUntil: 0 }
    let text: string
    try {
      text = readFileSync(this.#dir.file(FILE), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#o.log.warn({ code: (err as NodeJS.ErrnoException).code }, 'cannot read the budget file: starting with the whole budget')
      return empty
    }
    let f: FileShape
    try {
      f = JSON.parse(text) as FileShape
      if (typeof f !== 'object' || f === null) throw new Error('not an object')
    } catch {
      this.#dir.setAside(FILE, text.length === 0 ? 'truncated: empty file' : 'corrupt: not JSON')
      return empty
    }
    if (f.v !== FORMAT_VERSION) {
      this.#dir.setAside(FILE, `foreign: format version ${String(f.v)}`)
      return empty
    }
    const ok =
      typeof f.salt === 'string' &&
      typeof f.hash === 'string' &&
      Number.isFinite(f.limit) &&
      Number.isFinite(f.windowMs) &&
      Number.isFinite(f.savedAt) &&
      Number.isFinite(f.pausedUntil) &&
      Number.isFinite(f.inflight) &&
      Array.isArray(f.returns) &&
      f.returns.every((r) => Array.isArray(r) && Number.isFinite(r[0]) && Number.isInteger(r[1]) && r[1] > 0)
    if (!ok) {
      this.#dir.setAside(FILE, 'corrupt: missing or bad fields')
      return empty
    }
    if (!this.#dir.matches({ salt: Buffer.from(f.salt, 'base64'), hash: Buffer.from(f.hash, 'base64') })) {
      this.#dir.setAside(FILE, 'foreign: written for another JOBPROGRESS_API_URL or token')
      return empty
    }
    const { limit, windowMs, timeoutMs } = this.#o
    const shift = windowMs - f.windowMs // another window: a call's slot comes back one (new) window after it
    let returns = f.returns.map(([at, n]): [number, number] => [at + shift, n]).filter(([at]) => at > now)
    if (f.inflight > 0) returns.push([Math.min(f.savedAt + timeoutMs, now) + windowMs, Math.floor(f.inflight)])
    returns.sort((a, b) => a[0] - b[0])
    // a lower limit than before: the window is full until the earliest slots are back
    let spent = returns.reduce((s, [, n]) => s + n, 0)
    while (spent > limit) {
      const first = returns[0]!
      const drop = Math.min(first[1], spent - limit)
      first[1] -= drop
      spent -= drop
      if (first[1] === 0) returns = returns.slice(1)
    }
    const pausedUntil = f.pausedUntil > now ? f.pausedUntil : 0
    if (spent > 0 || pausedUntil) {
      this.#o.log.info(
        { spent, limit, nextBackInMs: returns[0] ? returns[0][0] - now : 0, pausedForMs: pausedUntil ? pausedUntil - now : 0 },
        'budget restored from CACHE_DIR: calls spent before the restart still count',
      )
    }
    return { spent, returns, pausedUntil }
  }

  /** The local limiter's slot store, recording every change to the file. */
  wrap(limiter: Bottleneck, inner: SlotStore, saved: SavedBudget): SlotStore {
    return new PersistedSlots(limiter, inner, saved, (state) => this.#write(state))
  }

  #lastWarn = 0

  #write(s: { pausedUntil: number; inflight: number; returns: Array<[number, number]> }): void {
    if (!this.#dir.held) return // another process took the directory over
    const f: FileShape = {
      v: FORMAT_VERSION,
      salt: this.#binding.salt.toString('base64'),
      hash: this.#binding.hash.toString('base64'),
      limit: this.#o.limit,
      windowMs: this.#o.windowMs,
      savedAt: Date.now(),
      pausedUntil: s.pausedUntil,
      inflight: s.inflight,
      returns: s.returns,
    }
    try {
      writeFileAtomic(this.#dir.file(FILE), JSON.stringify(f))
    } catch (err) {
      const now = Date.now()
      if (now - this.#lastWarn > 60_000) {
        this.#lastWarn = now
        this.#o.log.warn({ code: (err as NodeJS.ErrnoException).code }, 'cannot write the budget file (full disk?): a restart would not know the calls spent in this window')
      }
    }
  }
}

class PersistedSlots implements SlotStore {
  /** slots out, by the time they come back (rounded up to 100 ms) */
  readonly #returns = new Map<number, number>()
  #inflight = 0
  #lastWrite = 0
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(
    limiter: Bottleneck,
    private readonly inner: SlotStore,
    saved: SavedBudget,
    private readonly write: (s: { pausedUntil: number; inflight: number; returns: Array<[number, number]> }) => void,
  ) {
    if (saved.pausedUntil) inner.pause(saved.pausedUntil)
    for (const [at, n] of saved.returns) {
      inner.returnAt(at, n)
      this.#add(at, n)
    }
    limiter.on('executing', () => {
      this.#inflight++
      this.#save()
    })
    limiter.on('done', () => {
      this.#inflight = Math.max(0, this.#inflight - 1)
      this.#save()
    })
  }

  get pausedUntil(): number {
    return this.inner.pausedUntil
  }

  pause(until: number): void {
    this.inner.pause(until)
    this.#save()
  }

  returnAt(at: number, n: number): void {
    this.inner.returnAt(at, n)
    this.#add(at, n)
    this.#save()
  }

  close(): void {
    this.inner.close()
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#timer)
    this.#flush()
  }

  #add(at: number, n: number): void {
    const b = Math.ceil(at / BUCKET_MS) * BUCKET_MS // later, never earlier: safe
    this.#returns.set(b, (this.#returns.get(b) ?? 0) + n)
  }

  #save(): void {
    if (this.#closed || this.#timer) return
    const wait = this.#lastWrite + MIN_INTERVAL_MS - Date.now()
    if (wait <= 0) return this.#flush()
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#flush()
    }, wait)
    this.#timer.unref()
  }

  #flush(): void {
    const now = Date.now()
    this.#lastWrite = now
    for (const at of this.#returns.keys()) if (at <= now) this.#returns.delete(at)
    const returns = [...this.#returns].sort((a, b) => a[0] - b[0])
    const pausedUntil = this.inner.pausedUntil > now ? this.inner.pausedUntil : 0
    this.write({ pausedUntil, inflight: this.#inflight, returns })
  }
}
