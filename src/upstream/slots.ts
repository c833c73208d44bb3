// Where a spent slot waits to come back to the reservoir (the sliding-window log of throttle.ts).
// LocalSlots: due returns in this process (one timer for all: due-queue.ts). RedisSlots: a sorted set in Redis that every
// replica sweeps, so that slots come back by time even when the replica that spent them is gone.
import type Bottleneck from 'bottleneck'
import type { Redis } from 'ioredis'
import { DueQueue } from './due-queue.js'

export interface SlotStore {
  /** gives `n` slots back at time `at` (or when a pause ends, if one runs then) */
  returnAt(at: number, n: number): void
  /** no slot comes back before `until` */
  pause(until: number): void
  readonly pausedUntil: number
  close(): void
}

export class LocalSlots implements SlotStore {
  readonly #due: DueQueue<number>
  #pausedUntil = 0
  #closed = false

  constructor(
    private readonly limiter: Bottleneck,
    private readonly onError: (err: unknown) => void,
  ) {
    this.#due = new DueQueue<number>((ns) => {
      const n = ns.reduce((a, b) => a + b, 0)
      if (Date.now() < this.#pausedUntil) return this.returnAt(this.#pausedUntil, n)
      this.limiter.incrementReservoir(n).catch(this.onError)
    })
  }

  get pausedUntil(): number {
    return this.#pausedUntil
  }

  pause(until: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, until)
  }

  returnAt(at: number, n: number): void {
    if (this.#closed) return
    this.#due.add(at, n)
  }

  close(): void {
    this.#closed = true
    this.#due.close()
  }
}

// Pops the returns that are due (none while a pause runs) and answers how many slots they hold.
const SWEEP = `
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
local now = tonumber(ARGV[1])
if paused > now then return 0 end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #due == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = 0
for _, m in ipairs(due) do n = n + tonumber(string.match(m, ':(%d+)$')) end
return n`

// Sets the pause end to the later of the current one and ARGV[1].
const PAUSE = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local want = tonumber(ARGV[1])
if want > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return math.max(cur, want)`

export class RedisSlots implements SlotStore {
  readonly #timer: NodeJS.Timeout
  readonly #returnsKey: string
  readonly #pauseKey: string
  #pausedUntil = 0
  #seq = 0
  #closed = false

  constructor(
    private readonly limiter: Bottleneck,
    private readonly redis: Redis,
    prefix: string,
    private readonly keepMs: number,
    private readonly onError: (err: unknown) => void,
    sweepMs = 50,
  ) {
    this.#returnsKey = `${prefix}:returns`
    this.#pauseKey = `${prefix}:paused_until`
    this.#timer = setInterval(() => {
      this.#sweep().catch(this.onError)
    }, sweepMs)
    this.#timer.unref()
  }

  get pausedUntil(): number {
    return this.#pausedUntil
  }

  pause(until: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, until)
    this.redis.eval(PAUSE, 1, this.#pauseKey, String(until), String(this.keepMs)).catch(this.onError)
  }

  returnAt(at: number, n: number): void {
    if (this.#closed) return
    const member = `${process.pid}.${Date.now()}.${++this.#seq}:${n}`
    this.redis.multi().zadd(this.#returnsKey, at, member).pexpire(this.#returnsKey, this.keepMs).exec().catch(this.onError)
  }

  async #sweep(): Promise<void> {
    if (this.#closed || this.redis.status !== 'ready') return
    try {
      const n = Number(await this.redis.eval(SWEEP, 2, this.#returnsKey, this.#pauseKey, String(Date.now())))
      if (n > 0) await this.limiter.incrementReservoir(n)
      const paused = Number(await this.redis.get(this.#pauseKey))
      if (Number.isFinite(paused)) this.#pausedUntil = Math.max(this.#pausedUntil, paused)
    } catch (err) {
      this.onError(err)
    }
  }

  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
  }
}
