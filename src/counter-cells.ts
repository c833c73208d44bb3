// prom-client's counter.labels(...).inc() hashes and validates the labels on every call. On the hit path
// each labelled series is a plain number instead, handed to prom-client when the metrics are read.
import type { Counter } from 'prom-client'

export interface Cell {
  inc(): void
}

interface CellState<T extends string> {
  labels: Partial<Record<T, string | number>>
  n: number
  flushed: number
}

const states = new WeakMap<object, Map<string, CellState<string>>>()

/** The cell of one label set of `counter`; the same cell for the same labels. */
export function cellOf<T extends string>(counter: Counter<T>, labels: Partial<Record<T, string | number>>): Cell {
  let cells = states.get(counter)
  if (!cells) {
    const all = new Map<string, CellState<string>>()
    cells = all
    states.set(counter, all)
    const c = counter as unknown as { collect?: () => unknown }
    const previous = c.collect
    c.collect = function (this: unknown) {
      for (const s of all.values()) {
        if (s.n === s.flushed) continue
        counter.inc(s.labels as Partial<Record<T, string | number>>, s.n - s.flushed)
        s.flushed = s.n
      }
      return previous?.call(this)
    }
  }
  const key = JSON.stringify(labels)
  let s = cells.get(key)
  if (!s) cells.set(key, (s = { labels, n: 0, flushed: 0 }))
  const state = s
  return {
    inc() {
      state.n++
    },
  }
}
