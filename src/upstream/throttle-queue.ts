// The fair queue in front of the budget's limiter (throttle.ts): by class (retries, writes, reads,
// background refreshes), round-robin between clients within a class.
import type { CallTiming } from './accounting.js'
import type { Budget } from './throttle.js'

export type CallClass = 'retry' | 'write' | 'read' | 'background'
export const CLASSES: readonly CallClass[] = ['retry', 'write', 'read', 'background']

export interface Waiter {
  client: string
  /** whose budget share and counts the call goes to (the client key's name, or "anonymous") */
  account: string
  timing: CallTiming | undefined
  /** holds a slot of its account's window (ClientWindows) */
  holds?: boolean
  cls: CallClass
  state: 'queued' | 'handed' | 'running' | 'abandoned'
  enqueuedAt: number
  timer: NodeJS.Timeout | undefined
  job: (budget: Budget) => Promise<void>
  fail: (err: unknown) => void
  detach: () => void
}

export class FairQueue {
  readonly #queues = new Map<CallClass, Map<string, Waiter[]>>(CLASSES.map((c) => [c, new Map()]))
  #size = 0

  /** calls waiting here */
  get size(): number {
    return this.#size
  }

  /** At the back of its client's line. */
  push(w: Waiter): void {
    const perClient = this.#queues.get(w.cls)!
    const list = perClient.get(w.client)
    if (list) list.push(w)
    else perClient.set(w.client, [w])
    this.#size++
  }

  /** Back at the front of its client's line (it was handed out but never sent). */
  unshift(w: Waiter): void {
    const perClient = this.#queues.get(w.cls)!
    perClient.set(w.client, [w, ...(perClient.get(w.client) ?? [])])
    this.#size++
  }

  /** Takes a waiting call out of the queue. */
  remove(w: Waiter): void {
    const perClient = this.#queues.get(w.cls)!
    const list = perClient.get(w.client)!
    list.splice(list.indexOf(w), 1)
    if (list.length === 0) perClient.delete(w.client)
    this.#size--
  }

  /** Every waiting call, in class order. */
  all(): Waiter[] {
    const all: Waiter[] = []
    for (const perClient of this.#queues.values()) {
      for (const list of perClient.values()) all.push(...list)
    }
    return all
  }

  /** Calls of `client` waiting in the queue (not yet handed to the limiter). */
  queuedOf(client: string): number {
    let n = 0
    for (const perClient of this.#queues.values()) n += perClient.get(client)?.length ?? 0
    return n
  }

  /**
   * The queue is full: one client must not keep the others out. When another client holds at least
   * two waiting calls more than `client`, its newest waiting call (the least urgent class first)
   * is the one to leave the queue (with QUEUE_FULL), and `client` takes the place. So a lone client
   * may fill the queue, but under contention each client's share shrinks towards QUEUE_MAX /
   * clients, and a newcomer is always queued.
   */
  victimFor(client: string): Waiter | undefined {
    const mine = this.queuedOf(client)
    let victim: string | undefined
    let most = mine + 1
    const counted = new Set<string>()
    for (const perClient of this.#queues.values()) {
      for (const other of perClient.keys()) {
        if (other === client || counted.has(other)) continue
        counted.add(other)
        const n = this.queuedOf(other)
        if (n > most) {
          most = n
          victim = other
        }
      }
    }
    if (victim === undefined) return undefined
    for (const cls of [...CLASSES].reverse()) {
      if (cls === 'retry') continue
      const list = this.#queues.get(cls)!.get(victim)
      const w = list?.[list.length - 1]
      if (w) return w
    }
    return undefined
  }

  /** The next call to hand out, taken from the queue: skips the clients `capped` says are at their share's cap. */
  next(capped: (account: string) => boolean): Waiter | undefined {
    for (const cls of CLASSES) {
      const perClient = this.#queues.get(cls)!
      for (const [client, list] of perClient) {
        if (capped(list[0]!.account)) continue // its share of this window is spent
        const w = list.shift()!
        perClient.delete(client)
        if (list.length > 0) perClient.set(client, list) // to the back of the round
        this.#size--
        return w
      }
    }
    return undefined
  }
}
