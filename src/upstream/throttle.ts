// The budget: one Bottleneck limiter that every upstream call goes through, fed by a fair queue.
//
// Budget model: a sliding-window log kept in Bottleneck's reservoir. The reservoir starts at the
// limit; a call takes one slot when Bottleneck starts it, and that slot comes back one window after
// the call's answer arrived. So any interval of one window holds at most `limit` calls, whatever the
// alignment of the upstream's own fixed window, and a burst up to the budget goes out at once.
// Slots taken by others (X-RateLimit-Remaining lower than our estimate) and by a 429 pause are
// "phantom calls" of the log: they come back the same way, so the slots in play always add up to
// the limit.
//
// Queue: Bottleneck cannot take a job back once queued, so waiting happens here, in front of it
// (throttle-queue.ts): by class (retries, writes, reads, background refreshes), round-robin between
// clients within a class. At most one job waits inside Bottleneck at a time: a caller that leaves
// (disconnect, queue timeout) simply leaves this queue, and a newcomer from another client is one
// slot from the front.
//
// Distributed mode: the budget is a clustered Bottleneck (Redis) whose slots come back through
// RedisSlots, shared by every replica. While Redis is down, calls go through a local limiter holding
// a conservative share of the budget; a call that was handed to the shared limiter when Redis went
// away goes back to the queue (it was not sent).
import Bottleneck from 'bottleneck'
import { fastLocalYield } from './bottleneck-local.js'
import { LocalSlots, type SlotStore } from './slots.js'
import { ClientWindows, type CallTiming } from './accounting.js'
import { AbortedError, QueueFull, QueueTimeout, ShuttingDown, withRetryAfter } from '../errors.js'
import { FairQueue, type CallClass, type Waiter } from './throttle-queue.js'

export type { CallClass } from './throttle-queue.js'

export interface ThrottleOptions {
  limit: number
  windowMs: number
  maxConcurrent: number
  queueMax: number
  queueTimeoutMs: number
  onError?: (err: unknown) => void
  /** distributed mode: the shared budget, used while up() says so */
  shared?: { budget: Budget; up: () => boolean; fallbackLimit: number }
  /** CLIENT_BUDGET_SHARES: percent of `limit` per window, by client (account) name */
  shares?: ReadonlyMap<string, number>
  /** the local budget kept across restarts (budget-file.ts): slots already spent, and the store wrapper */
  persist?: { spent: number; wrap: (limiter: Bottleneck, slots: SlotStore) => SlotStore }
}

/** A limiter and the store its spent slots wait in. */
export interface Budget {
  name: 'local' | 'shared'
  limiter: Bottleneck
  slots: SlotStore
}

/** What a job returns: its value for the caller now, and when the call is really over. */
export interface JobResult<T> {
  value: T
  /** settles when the call stops occupying a concurrency slot (body read or closed) */
  finished?: Promise<unknown>
}

export interface ThrottleStats {
  calls: number
  throttled: number
  pauses: number
  queueTimeouts: number
  queueFull: number
  waitMsTotal: number
  corrections: number
}

export class Throttle {
  /** called with the seconds each call waited for the budget (metrics) */
  onWait: (seconds: number) => void = () => undefined
  readonly stats: ThrottleStats = { calls: 0, throttled: 0, pauses: 0, queueTimeouts: 0, queueFull: 0, waitMsTotal: 0, corrections: 0 }
  /** per-client calls, waits and window use; the share caps */
  readonly clients: ClientWindows
  readonly #o: ThrottleOptions
  readonly #queue = new FairQueue()
  readonly #local: Budget
  #inLimiter = 0
  #running = 0
  #started = 0
  #closed = false
  #stopped = false
  /** handed to Bottleneck, not started yet */
  readonly #handed = new Set<Waiter>()

  constructor(o: ThrottleOptions) {
    fastLocalYield()
    this.#o = o
    this.clients = new ClientWindows({ limit: o.limit, windowMs: o.windowMs, shares: o.shares ?? new Map(), onFree: () => this.#pump() })
    const limiter = new Bottleneck({ maxConcurrent: o.maxConcurrent, reservoir: o.shared ? o.shared.fallbackLimit : Math.max(0, o.limit - (o.persist?.spent ?? 0)) })
    limiter.on('error', (err) => o.onError?.(err))
    const slots = new LocalSlots(limiter, (err) => o.onError?.(err))
    this.#local = { name: 'local', limiter, slots: o.persist ? o.persist.wrap(limiter, slots) : slots }
  }

  /** The budget in use now: the shared one while Redis is up, else the local one. */
  get budget(): Budget {
    const shared = this.#o.shared
    return shared && shared.up() ? shared.budget : this.#local
  }

  /** The active limiter (tests give it slots by hand). */
  get limiter(): Bottleneck {
    return this.budget.limiter
  }

  /** Calls waiting for the budget (the contract's queue depth). */
  get depth(): number {
    return this.#queue.size + this.#inLimiter
  }

  get running(): number {
    return this.#running
  }

  /** Sequence number of the last call started; see observeRemaining. */
  get startedSeq(): number {
    return this.#started
  }

  get pausedUntil(): number {
    return this.budget.slots.pausedUntil
  }

  /** Budget left in the current window (slots not in use), never negative. */
  async budgetLeft(): Promise<number> {
    try {
      const r = await this.budget.limiter.currentReservoir()
      return Math.max(0, r ?? this.#o.limit)
    } catch {
      return 0
    }
  }

  /** Seconds a client should wait before trying again, from the queue and the budget. */
  retryAfterSeconds(): number {
    const ahead = this.depth + 1
    const windows = ahead / this.#o.limit
    const pause = Math.max(0, this.pausedUntil - Date.now())
    return Math.max(1, Math.ceil((windows * this.#o.windowMs + pause) / 1000))
  }

  /**
   * Runs `fn` when the budget allows. Rejects with QUEUE_FULL, QUEUE_TIMEOUT, SHUTTING_DOWN, or an
   * AbortedError when `signal` aborts while the call is still waiting (it then costs no budget).
   */
  run<T>(opts: { client: string; cls: CallClass; signal?: AbortSignal; account?: string; timing?: CallTiming }, fn: () => Promise<JobResult<T>>): Promise<T> {
    if (this.#closed) return Promise.reject(withRetryAfter(new ShuttingDown(), 5))
    if (opts.signal?.aborted) return Promise.reject(new AbortedError('the caller left'))
    if (this.depth >= this.#o.queueMax && opts.cls !== 'retry' && !this.#makeRoom(opts.client)) {
      this.stats.queueFull++
      return Promise.reject(withRetryAfter(new QueueFull(), this.retryAfterSeconds()))
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => this.#abandon(w, new AbortedError('the caller left'))
      const w: Waiter = {
        client: opts.client,
        account: opts.account ?? opts.client,
        timing: opts.timing,
        cls: opts.cls,
        state: 'queued',
        enqueuedAt: Date.now(),
        timer: undefined,
        fail: reject,
        detach: () => {
          clearTimeout(w.timer)
          opts.signal?.removeEventListener('abort', onAbort)
        },
        job: async (budget: Budget) => {
          w.detach()
          w.state = 'running'
          this.#started++
          this.#running++
          this.stats.calls++
          const waitedMs = Date.now() - w.enqueuedAt
          this.stats.waitMsTotal += waitedMs
          this.onWait(waitedMs / 1000)
          this.clients.started(w.account, waitedMs)
          if (w.timing) w.timing.budgetMs += waitedMs
          let answeredAt = Date.now()
          try {
            const { value, finished } = await fn()
            answeredAt = Date.now()
            resolve(value)
            await finished?.catch(() => undefined)
          } catch (err) {
            answeredAt = Date.now()
            reject(err)
          } finally {
            this.#running--
            budget.slots.returnAt(answeredAt + this.#o.windowMs, 1)
            if (w.holds) this.clients.release(w.account, answeredAt + this.#o.windowMs)
            w.holds = false
          }
        },
      }
      w.timer = setTimeout(() => {
        this.stats.queueTimeouts++
        this.#abandon(w, withRetryAfter(new QueueTimeout(), this.retryAfterSeconds()))
      }, this.#o.queueTimeoutMs)
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      this.#queue.push(w)
      this.#pump()
    })
  }

  /** Stops all sending until `ms` from now: every slot, not only one call's. */
  async pause(ms: number): Promise<void> {
    const until = Date.now() + ms
    const budget = this.budget
    if (until <= budget.slots.pausedUntil) return
    budget.slots.pause(until)
    this.stats.pauses++
    const r = (await budget.limiter.currentReservoir()) ?? 0
    if (r > 0) {
      await budget.limiter.incrementReservoir(-r)
      budget.slots.returnAt(until, r)
    }
  }

  /**
   * The upstream said `remaining` calls are left, in an answer to the call started as number `seq`.
   * Calls we started after it may not be counted in that figure yet: subtract them. Lower than our
   * own estimate means someone else spends the budget: take the difference out for one window.
   */
  async observeRemaining(remaining: number, seq: number): Promise<void> {
    const estimate = remaining - Math.max(0, this.#started - seq)
    const budget = this.budget
    const r = (await budget.limiter.currentReservoir()) ?? 0
    if (estimate < r) {
      const d = r - Math.max(0, estimate)
      this.stats.corrections++
      await budget.limiter.incrementReservoir(-d)
      budget.slots.returnAt(Date.now() + this.#o.windowMs, d)
    }
  }

  /** Shutdown: every call still waiting gets SHUTTING_DOWN (it was never sent); new ones too. */
  rejectWaiting(): void {
    this.#closed = true
    for (const w of this.#queue.all()) this.#abandon(w, withRetryAfter(new ShuttingDown(), 5))
    for (const w of [...this.#handed]) this.#abandon(w, withRetryAfter(new ShuttingDown(), 5))
  }

  /** Rejects every waiting call with SHUTTING_DOWN and stops the limiter. */
  async close(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.rejectWaiting()
    for (const b of [this.#local, this.#o.shared?.budget]) {
      if (!b) continue
      b.slots.close()
      await b.limiter.stop({ dropWaitingJobs: true }).catch(() => undefined)
      await b.limiter.disconnect(false)
    }
    this.clients.close()
  }

  /** The queue is full: another client's newest waiting call may leave it for `client` (FairQueue.victimFor). */
  #makeRoom(client: string): boolean {
    const w = this.#queue.victimFor(client)
    if (!w) return false
    this.stats.queueFull++
    this.#abandon(w, withRetryAfter(new QueueFull(), this.retryAfterSeconds()))
    return true
  }

  #abandon(w: Waiter, err: unknown): void {
    if (w.state === 'running' || w.state === 'abandoned') return
    w.detach()
    if (w.state === 'queued') this.#queue.remove(w)
    // 'handed': Bottleneck holds the job; it will see the state and give its slot straight back.
    if (w.timing) w.timing.budgetMs += Date.now() - w.enqueuedAt
    w.state = 'abandoned'
    w.fail(err)
  }

  /** A handed call that was never sent gives its slot back to its account's share. */
  #giveBack(w: Waiter): void {
    if (!w.holds) return
    w.holds = false
    this.clients.giveBack(w.account)
  }

  /**
   * How many calls may wait inside Bottleneck: one, so that a newcomer is never behind calls that
   * cannot start; or, with the local limiter, as many as can start right now (free slots and
   * concurrency), so that a burst within the budget goes out at once rather than one after another.
   */
  #handLimit(budget: Budget): number {
    if (budget.name !== 'local') return 1
    const reservoir = (budget.limiter as unknown as { _store?: { storeOptions?: { reservoir?: number | null } } })._store?.storeOptions?.reservoir
    const free = Math.min(reservoir ?? 1, this.#o.maxConcurrent - this.#running)
    return Math.max(1, free)
  }

  #pump(): void {
    while (!this.#closed && this.#queue.size > 0 && this.#inLimiter < this.#handLimit(this.budget)) {
      const w = this.#queue.next((account) => this.clients.capped(account))
      if (!w) break // only clients at their share's cap wait: ClientWindows calls #pump when one frees
      this.clients.take(w.account)
      w.holds = true
      const budget = this.budget
      this.#inLimiter++
      w.state = 'handed'
      this.#handed.add(w)
      budget.limiter
        .schedule({ expiration: 10 * 60_000 }, async () => {
          this.#handed.delete(w)
          this.#inLimiter--
          this.#pump()
          if (w.state === 'abandoned') {
            // never sent: the slot was not spent
            this.#giveBack(w)
            await budget.limiter.incrementReservoir(1)
            return
          }
          await w.job(budget)
        })
        .catch((err: unknown) => {
          this.#handed.delete(w)
          this.#giveBack(w)
          if (w.state !== 'handed') return
          this.#inLimiter--
          if (budget.name === 'shared' && !this.#closed) {
            // the shared limiter failed (Redis went away) before the call was sent: queue it again
            this.#o.onError?.(err)
            w.state = 'queued'
            this.#queue.unshift(w)
            setTimeout(() => this.#pump(), 50).unref()
            return
          }
          w.state = 'abandoned'
          w.fail(this.#closed ? withRetryAfter(new ShuttingDown(), 5) : err)
        })
    }
  }
}
