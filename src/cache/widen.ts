// Widening: a miss asks upstream for the includes recently requested on its route pattern, so that
// the other variants of the same resource become hits (projections of that one answer). Bounded:
// at most MAX_NAMES names, and dotted names (customer.phones) only when the request itself has them
// (a projection needs the same dotted names on both sides).

export const MAX_NAMES = 8
const MAX_ROUTES = 1000
const MAX_NAMES_PER_ROUTE = 64

export class Widener {
  readonly #recent = new Map<string, Map<string, number>>()
  readonly #now: () => number

  constructor(now: () => number) {
    this.#now = now
  }

  /** A request on `route` asked for these includes. */
  note(route: string, includes: readonly string[]): void {
    if (includes.length === 0) return
    let names = this.#recent.get(route)
    if (!names) {
      if (this.#recent.size >= MAX_ROUTES) return
      this.#recent.set(route, (names = new Map<string, number>()))
    }
    const now = this.#now()
    for (const n of includes) {
      if (n.includes('.')) continue
      names.delete(n) // most recent last
      names.set(n, now)
      if (names.size > MAX_NAMES_PER_ROUTE) names.delete(names.keys().next().value!)
    }
  }

  /** `requested` plus the names asked for on `route` within `windowMs`, most recent first, sorted. */
  widen(route: string, requested: readonly string[], windowMs: number): string[] {
    const out = new Set(requested)
    const names = this.#recent.get(route)
    if (names && out.size < MAX_NAMES) {
      const since = this.#now() - windowMs
      for (const [n, at] of [...names].reverse()) {
        if (out.size >= MAX_NAMES) break
        if (at >= since) out.add(n)
      }
    }
    return [...out].sort()
  }
}
