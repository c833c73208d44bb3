// Who spends the budget: per-client counts of upstream calls, the calls each client holds in the
// current window, and the caps of CLIENT_BUDGET_SHARES. The Throttle calls this at the moments a call
// is handed to the limiter, starts, is given back unsent, and ends.
import { DueQueue } from './due-queue.js'

/** The client name without PROXY_API_KEYS. */
export const ANONYMOUS = 'anonymous'

/** What one request waited and spent upstream (Server-Timing); the Throttle and Upstream add to it. */
export interface CallTiming {
  /** ms waited for a slot of the budget */
  budgetMs: number
  /** ms from sending to the answer's headers, summed over the request's calls */
  upstreamMs: number
  /** upstream calls made for the request (0 when it was answered without one) */
  calls: number
}

export const newTiming = (): CallTiming => ({ budgetMs: 0, upstreamMs: 0, calls: 0 })

/**
 * CLIENT_BUDGET_SHARES: `name=percent,...`. Names must be PROXY_API_KEYS names (or "anonymous"
 * without keys); the percents add up to 100 at most. Throws an Error with a one-line message.
 */
export function parseBudgetShares(raw: string | undefined, keyNames: readonly string[]): ReadonlyMap<string, number> {
  const shares = new Map<string, number>()
  if (!raw || !raw.trim()) return shares
  const known = keyNames.length ? keyNames : [ANONYMOUS]
  const entries = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  entries.forEach((entry, i) => {
    const m = /^([^=\s]+)\s*=\s*(\S+?)%?$/.exec(entry)
    if (!m) throw new Error(`entry ${i + 1} ("${entry.slice(0, 40)}"): expected name=percent, e.g. batch=20`)
    const [, name, value] = m as unknown as [string, string, string]
    if (!known.includes(name)) {
      throw new Error(
        keyNames.length
          ? `"${name.slice(0, 64)}" is not a client of PROXY_API_KEYS (its names: ${keyNames.join(', ')})`
          : `"${name.slice(0, 64)}" is not a client: without PROXY_API_KEYS the only client is "${ANONYMOUS}"`,
      )
    }
    if (shares.has(name)) throw new Error(`"${name}" is given twice`)
    const percent = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN
    if (!(percent > 0 && percent <= 100)) throw new Error(`"${name}": expected a percent above 0 and at most 100, got "${value.slice(0, 20)}"`)
    shares.set(name, percent)
  })
  const sum = [...shares.values()].reduce((a, b) => a + b, 0)
  if (sum > 100 + 1e-9) throw new Error(`the shares add up to ${Math.round(sum * 100) / 100}%, more than 100%`)
  return shares
}

/** One client's use of the budget since start. */
export interface ClientUse {
  /** upstream calls started for its requests (misses, writes, refreshes it triggered, retries) */
  calls: number
  /** of those, calls that waited for a slot (WAITED_MS or more) */
  waits: number
  /** total ms its calls waited for a slot */
  waitMs: number
}

/** A call that waited less than this did not wait for the budget (scheduling noise). */
export const WAITED_MS = 100

const MAX_CLIENTS = 1000

export interface ClientWindowsOptions {
  limit: number
  windowMs: number
  /** percent of `limit` per client name */
  shares: ReadonlyMap<string, number>
  /** a capped client got a slot back: the queue may move */
  onFree: () => void
}

export class ClientWindows {
  readonly use = new Map<string, ClientUse>()
  readonly #o: ClientWindowsOptions
  /** calls handed, running, or ended less than a window ago, by client */
  readonly #held = new Map<string, number>()
  /** slots coming back to their client's share, one window after each call's answer */
  readonly #released: DueQueue<string>

  constructor(o: ClientWindowsOptions) {
    this.#o = o
    this.#released = new DueQueue<string>((clients) => {
      let freed = false
      for (const client of clients) {
        this.#drop(client)
        freed ||= o.shares.has(client)
      }
      if (freed) o.onFree()
    })
  }

  get shares(): ReadonlyMap<string, number> {
    return this.#o.shares
  }

  /** The most calls `client` may hold in one window; undefined without a share. */
  cap(client: string): number | undefined {
    const p = this.#o.shares.get(client)
    return p === undefined ? undefined : Math.max(1, Math.floor((this.#o.limit * p) / 100 + 1e-9))
  }

  /** Calls of `client` in the current window (handed to the limiter, running, or ended within a window). */
  held(client: string): number {
    return this.#held.get(client) ?? 0
  }

  capped(client: string): boolean {
    const cap = this.cap(client)
    return cap !== undefined && this.held(client) >= cap
  }

  /** A call of `client` was handed to the limiter: it holds one of its share's slots. */
  take(client: string): void {
    this.#held.set(client, this.held(client) + 1)
  }

  /** A handed call was never sent: its slot is free at once. */
  giveBack(client: string): void {
    this.#drop(client)
    this.#o.onFree()
  }

  /** A call started after waiting `waitedMs`. */
  started(client: string, waitedMs: number): void {
    let u = this.use.get(client)
    if (!u) {
      if (this.use.size >= MAX_CLIENTS) return
      this.use.set(client, (u = { calls: 0, waits: 0, waitMs: 0 }))
    }
    u.calls++
    u.waitMs += waitedMs
    if (waitedMs >= WAITED_MS) u.waits++
  }

  /** A call ended: its slot comes back to the client's share at `at` (one window after its answer). */
  release(client: string, at: number): void {
    this.#released.add(at, client)
  }

  close(): void {
    this.#released.close()
  }

  #drop(client: string): void {
    const n = this.held(client) - 1
    if (n > 0) this.#held.set(client, n)
    else this.#held.delete(client)
  }
}
