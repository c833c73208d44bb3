// Precise eviction: after a write (the path, its subtree, its ancestors' own entries, the link rules'
// targets), on a purge, and when another replica publishes one. HttpCache's evictForWrite / purge /
// applyRemote / evict are this module's functions over its store, resources and fills.
import type { Fills } from './covering.js'
import type { Resources } from './resource.js'
import { linkedTargets, type CacheRules } from './rules.js'
import { holdsInclude, type CacheStore, type Entry, type EvictFilter } from './store.js'
import type { CacheStats, Invalidation, SharedCache } from './types.js'

export interface InvalidationContext {
  store: CacheStore
  resources: Resources
  fills: Fills
  rules: CacheRules
  shared: SharedCache | undefined
  stats: CacheStats
}

/** The eviction filters of an invalidation. */
export function invalidationFilters(inv: Invalidation, rules: CacheRules): EvictFilter[] {
  if (inv.op === 'purge') {
    const prefix = inv.prefix
    return prefix ? [{ match: (p) => p === prefix || p.startsWith(prefix + '/') }] : [{ match: () => true }]
  }
  const path = inv.path
  const ancestors = new Set<string>()
  const segs = path.split('/')
  for (let i = segs.length - 1; i > 1; i--) ancestors.add(segs.slice(0, i).join('/'))
  return [{ match: (p) => p === path || p.startsWith(path + '/') || ancestors.has(p) }, ...linkedTargets(rules, path).map((t) => ({ match: (p: string) => t.match.test(p), includes: t.includes }))]
}

/** Applies eviction filters to the store and to fills in flight. */
export function evict(c: InvalidationContext, filters: EvictFilter[]): number {
  let n = 0
  for (const f of filters) {
    // an entry evicted for one relation still holds the rest: keep its projection without it
    const narrowed: Entry[] = []
    n += c.store.evict(f, f.includes === undefined ? undefined : (e) => narrowed.push(e))
    for (const e of narrowed) c.resources.withoutRelation(e, f.includes!)
    for (const fill of c.fills.values()) {
      // a fill still queued is sent after the write and sees it
      if (fill.sent && f.match(fill.path) && (f.includes === undefined || holdsInclude(fill.includes, f.includes))) fill.invalidated = true
    }
  }
  c.stats.evicted += n
  return n
}

/** First tier at once (before any await), then the Redis tier and the other replicas. */
export async function invalidate(c: InvalidationContext, inv: Invalidation): Promise<number> {
  const filters = invalidationFilters(inv, c.rules)
  const n = evict(c, filters)
  await c.shared?.invalidate(inv, filters)
  return n
}
