// CACHE_RULES: per-path TTL overrides and eviction links, validated once at start-up.
//
//   /workflow/stages=3600            cache this path (any query) for an hour
//   /jobs/*/financial_summary=0      never cache it
//   /jobs/notes/*>/jobs/*/notes      a write to /jobs/notes/5 also evicts every /jobs/{id}/notes
//   /jobs/*/invoices>/jobs/$1/financial_summary
//                                    $1 is what the first * matched in the written path
//   /jobs/**>/customers/*?includes=jobs
//                                    only entries whose includes[] set holds "jobs"
//   /jobs/*!widening                 turn one resource-aware lever off for these paths (see LEVERS;
//   /**!all                          "all" turns every one off)
//
// Patterns are paths under /api/v3. `*` is one segment, a trailing `**` is any number of segments
// (zero included). Entries are separated by commas or new lines; the first TTL rule that matches wins.

export interface TtlRule {
  pattern: string
  match: RegExp
  seconds: number
}

export interface LinkRule {
  source: string
  sourceMatch: RegExp
  /** target pattern segments; `$N` refers to the Nth `*` of the source */
  target: string
  includes: string | undefined
}

/** The resource-aware levers (README "Resource-aware caching"); projection is what the others build on. */
export const LEVERS = ['projection', 'covering', 'widening', 'write-refresh'] as const
export type Lever = (typeof LEVERS)[number]

export interface LeverRule {
  pattern: string
  match: RegExp
  lever: Lever
}

export interface CacheRules {
  ttl: readonly TtlRule[]
  links: readonly LinkRule[]
  /** levers turned off per path */
  off?: readonly LeverRule[]
}

/** Links JobProgress needs that a path cannot show (see docs/jobprogress.md and the README). */
export const DEFAULT_LINKS = [
  '/jobs/notes/*>/jobs/*/notes',
  '/jobs/notes/*>/jobs/*?includes=job_notes',
  '/jobs/*/notes>/jobs?includes=job_notes',
  '/jobs/**>/customers?includes=jobs',
  '/jobs/**>/customers/*?includes=jobs',
  '/customers/**>/jobs?includes=customer',
  '/customers/**>/jobs/*?includes=customer',
  '/jobs/*/invoices/**>/jobs/$1/financial_summary',
  '/jobs/*/payments/**>/jobs/$1/financial_summary',
  '/jobs/*/payments/**>/jobs/$1/payment_history',
  '/jobs/*/estimates/**>/job/$1/resources',
  '/resources/**>/job/*/resources',
]

const SEGMENT = /^[A-Za-z0-9_.~-]+$/

function checkPattern(pattern: string, allowCaptures: boolean): string[] {
  if (!pattern.startsWith('/')) throw new Error(`"${pattern}" must start with /`)
  const segments = pattern === '/' ? [] : pattern.slice(1).split('/')
  segments.forEach((s, i) => {
    if (s === '*') return
    if (s === '**' && i === segments.length - 1) return
    if (allowCaptures && /^\$[1-9]$/.test(s)) return
    if (!SEGMENT.test(s)) throw new Error(`"${pattern}" has an invalid segment "${s}"`)
  })
  return segments
}

export function patternToRegExp(pattern: string): RegExp {
  const segments = checkPattern(pattern, false)
  let re = '^'
  for (const s of segments) {
    if (s === '**') re += '(?:/[^/]+)*'
    else if (s === '*') re += '/([^/]+)'
    else re += '/' + s.replace(/[.]/g, '\\.')
  }
  return new RegExp(re + '$')
}

export function parseCacheRules(raw: string): CacheRules {
  const ttl: TtlRule[] = []
  const links: LinkRule[] = []
  const off: LeverRule[] = []
  const items = raw
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean)
  for (const item of [...items, ...DEFAULT_LINKS.map((l) => `default:${l}`)]) {
    const isDefault = item.startsWith('default:')
    const text = isDefault ? item.slice('default:'.length) : item
    const eq = text.indexOf('=')
    const gt = text.indexOf('>')
    const bang = text.indexOf('!')
    if (bang > 0 && eq < 0 && gt < 0) {
      const pattern = text.slice(0, bang).trim()
      const lever = text.slice(bang + 1).trim()
      const levers = lever === 'all' ? LEVERS : LEVERS.filter((l) => l === lever)
      if (levers.length === 0) throw new Error(`"${text}": expected <path>!<lever>, a lever being one of ${LEVERS.join(', ')} or all`)
      for (const l of levers) off.push({ pattern, match: patternToRegExp(pattern), lever: l })
    } else if (gt > 0 && (eq < 0 || eq > gt)) {
      const source = text.slice(0, gt).trim()
      let target = text.slice(gt + 1).trim()
      let includes: string | undefined
      const q = target.indexOf('?')
      if (q >= 0) {
        const m = /^includes=([A-Za-z0-9_]+)$/.exec(target.slice(q + 1))
        if (!m) throw new Error(`"${text}": the only filter a link target takes is ?includes=<name>`)
        includes = m[1]
        target = target.slice(0, q)
      }
      const captures = source.split('/').filter((s) => s === '*').length
      checkPattern(target, true)
      for (const ref of target.match(/\$[1-9]/g) ?? []) {
        if (Number(ref.slice(1)) > captures) throw new Error(`"${text}": ${ref} has no matching * in ${source}`)
      }
      links.push({ source, sourceMatch: patternToRegExp(source), target, includes })
    } else if (eq > 0) {
      const pattern = text.slice(0, eq).trim()
      const value = text.slice(eq + 1).trim()
      if (!/^\d+$/.test(value)) throw new Error(`"${text}": expected <path>=<seconds>`)
      ttl.push({ pattern, match: patternToRegExp(pattern), seconds: Number(value) })
    } else {
      throw new Error(`"${text}": expected <path>=<seconds>, <path>><path> or <path>!<lever>`)
    }
  }
  return { ttl, links, off }
}

/** TTL in seconds for a path under /api/v3; `fallback` when no rule matches. */
export function ttlFor(rules: CacheRules, path: string, fallback: number): number {
  for (const r of rules.ttl) if (r.match.test(path)) return r.seconds
  return fallback
}

export interface LinkTarget {
  match: RegExp
  includes: string | undefined
}

/** The entry patterns a write to `path` reaches through links, besides its own subtree and ancestors. */
export function linkedTargets(rules: CacheRules, path: string): LinkTarget[] {
  const out: LinkTarget[] = []
  for (const l of rules.links) {
    const m = l.sourceMatch.exec(path)
    if (!m) continue
    const target = l.target.replace(/\$([1-9])/g, (_, n: string) => m[Number(n)] ?? '*')
    // A captured segment may hold characters that are not pattern-safe: fall back to "*".
    const safe = target
      .split('/')
      .map((s, i) => (i === 0 || s === '*' || s === '**' || SEGMENT.test(s) ? s : '*'))
      .join('/')
    out.push({ match: patternToRegExp(safe), includes: l.includes })
  }
  return out
}

/** Whether CACHE_RULES turned `lever` off for a path under /api/v3. */
export function leverOff(rules: CacheRules, path: string, lever: Lever): boolean {
  return rules.off?.some((r) => r.lever === lever && r.match.test(path)) ?? false
}
