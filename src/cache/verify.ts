// The safety check of the resource-aware levers, per route pattern (/jobs/{id}, /customers, ...).
// Projection is trusted on a route once real answers proved it: the first times the proxy holds a
// real narrower answer and a real wider one of the same path, the projection of the wider one must
// say exactly what the narrower one says. One difference turns the lever off for that route (logged,
// counted, shown on /_proxy/status) until the proxy restarts. CACHE_RULES can turn any lever off.
import type { FastifyBaseLogger } from 'fastify'
import { leverOff, type CacheRules, type Lever } from './rules.js'

/** Pairs that must match before a route's projections are served. */
export const VERIFY_PAIRS = 2
/** Pairs compared per route at most (then it is trusted without more checks). */
export const VERIFY_MAX = 10
const MAX_ROUTES = 1000

export interface DisabledLever {
  lever: Lever
  route: string
  reason: string
  at: string
}

export interface VerifyStatus {
  /** route -> pairs compared and how many matched */
  verified: Record<string, { checked: number; matched: number }>
  disabled: DisabledLever[]
}

export class Verifier {
  /** called once per lever and route turned off (metrics) */
  onDisabled: (lever: Lever, route: string) => void = () => undefined
  readonly #rules: CacheRules
  readonly #log: FastifyBaseLogger
  readonly #routes = new Map<string, { checked: number; matched: number }>()
  readonly #disabled = new Map<string, DisabledLever>()

  constructor(o: { rules: CacheRules; log: FastifyBaseLogger }) {
    this.#rules = o.rules
    this.#log = o.log
  }

  /**
   * Whether `lever` may act on `path` (route pattern `route`): not turned off by CACHE_RULES nor by a
   * failed check. Projection (and covering and widening, which hand out projections) also need the
   * route's projections proved by VERIFY_PAIRS real pairs.
   */
  allows(lever: Lever, route: string, path: string): boolean {
    if (leverOff(this.#rules, path, lever) || this.#disabled.has(`${lever} ${route}`)) return false
    if (lever === 'write-refresh') return true
    if (lever !== 'projection' && !this.allows('projection', route, path)) return false
    return (this.#routes.get(route)?.matched ?? 0) >= VERIFY_PAIRS
  }

  /** Whether a real pair on this route is still worth comparing. */
  wants(route: string): boolean {
    if (this.#disabled.has(`projection ${route}`)) return false
    const r = this.#routes.get(route)
    return !r || r.checked < VERIFY_MAX
  }

  /** Records one comparison of a projection with the real answer; a difference turns projection off. */
  record(route: string, same: boolean, what: string): void {
    let r = this.#routes.get(route)
    if (!r) {
      if (this.#routes.size >= MAX_ROUTES) return
      this.#routes.set(route, (r = { checked: 0, matched: 0 }))
    }
    r.checked++
    if (same) r.matched++
    else this.disable('projection', route, `a projection differed from the real answer (${what})`)
  }

  disable(lever: Lever, route: string, reason: string): void {
    const id = `${lever} ${route}`
    if (this.#disabled.has(id)) return
    this.#disabled.set(id, { lever, route, reason, at: new Date().toISOString() })
    this.#log.warn({ lever, route, reason }, `resource-aware cache: ${lever} turned off for ${route}`)
    this.onDisabled(lever, route)
  }

  status(): VerifyStatus {
    return { verified: Object.fromEntries(this.#routes), disabled: [...this.#disabled.values()] }
  }
}
