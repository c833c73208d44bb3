// Items due at a time, with one timer for the earliest of them. The sliding-window log gives each
// call's slot back one window after its answer (slots.ts), and each client's share the same
// (accounting.ts). A timer per call is about 230 bytes of heap for a whole window: at a high
// UPSTREAM_RATE_LIMIT that was 46 MiB for 100k calls in a minute (bench/results, issue 14); a heap
// of (time, item) pairs is 40 bytes each and one timer.
const MAX_TIMER_MS = 2 ** 31 - 1

export class DueQueue<T> {
  readonly #heap: Array<{ at: number; item: T }> = []
  readonly #onDue: (items: T[]) => void
  #timer: NodeJS.Timeout | undefined
  #timerAt = Infinity
  #closed = false

  /** `onDue` gets every item whose time has come, together. */
  constructor(onDue: (items: T[]) => void) {
    this.#onDue = onDue
  }

  get size(): number {
    return this.#heap.length
  }

  add(at: number, item: T): void {
    if (this.#closed) return
    const h = this.#heap
    h.push({ at, item })
    // sift up
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (h[p]!.at <= h[i]!.at) break
      ;[h[p], h[i]] = [h[i]!, h[p]!]
      i = p
    }
    if (at < this.#timerAt) this.#arm()
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#heap.length = 0
  }

  #arm(): void {
    clearTimeout(this.#timer)
    const head = this.#heap[0]
    if (!head) {
      this.#timer = undefined
      this.#timerAt = Infinity
      return
    }
    this.#timerAt = head.at
    // at least 1 ms: a timer may fire when Date.now() is still a fraction of a ms before `at`; at
    // most Node's longest timer (~24.8 days; longer fires at once): it re-arms for what is left
    this.#timer = setTimeout(() => this.#fire(), Math.min(MAX_TIMER_MS, Math.max(1, head.at - Date.now())))
    this.#timer.unref()
  }

  #fire(): void {
    this.#timer = undefined
    this.#timerAt = Infinity
    const now = Date.now()
    const due: T[] = []
    while (this.#heap.length > 0 && this.#heap[0]!.at <= now) due.push(this.#pop())
    this.#arm()
    if (due.length > 0) this.#onDue(due)
  }

  #pop(): T {
    const h = this.#heap
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      // sift down
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && h[l]!.at < h[m]!.at) m = l
        if (r < h.length && h[r]!.at < h[m]!.at) m = r
        if (m === i) break
        ;[h[m], h[i]] = [h[i]!, h[m]!]
        i = m
      }
    }
    return top.item
  }
}
