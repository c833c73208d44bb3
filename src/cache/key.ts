// Cache keys: the path under /api/v3 plus the canonical query, so that requests JobProgress answers
// the same way share one entry, and requests it answers differently never do.
import { BadRequest } from '../errors.js'

export interface CacheKey {
  /** the decoded path under /api/v3, e.g. /jobs/11 */
  path: string
  /** path + '?' + canonical query (or the path alone) */
  key: string
  /** the includes[] set, sorted */
  includes: readonly string[]
}

const INCLUDES = /^includes(\[\d*\])?$/

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    throw new BadRequest(`Malformed percent-encoding in the ${what}`)
  }
}

/**
 * Canonical form of a query: parameters sorted by name (stable for repeated names), percent-encoding
 * normalised, and includes[] / includes[N] / includes=a,b merged into one sorted set.
 */
export function canonicalQuery(rawQuery: string): { query: string; includes: string[] } {
  const q = rawQuery.startsWith('?') ? rawQuery.slice(1) : rawQuery
  const pairs: Array<[string, string]> = []
  const includes = new Set<string>()
  for (const part of q.split('&')) {
    if (!part) continue
    const eq = part.indexOf('=')
    const name = decode(eq < 0 ? part : part.slice(0, eq), 'query')
    const value = eq < 0 ? '' : decode(part.slice(eq + 1), 'query')
    if (INCLUDES.test(name)) {
      for (const inc of value.split(',')) {
        const v = inc.trim()
        if (v) includes.add(v)
      }
    } else {
      pairs.push([name, value])
    }
  }
  const sortedIncludes = [...includes].sort()
  for (const inc of sortedIncludes) pairs.push(['includes[]', inc])
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  const query = pairs.map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`).join('&')
  return { query, includes: sortedIncludes }
}

/** rawPath: the path under /api/v3 as sent (percent-encoded); rawQuery: '' or '?...' */
export function cacheKey(rawPath: string, rawQuery: string): CacheKey {
  const path = rawPath
    .split('/')
    .map((s) => decode(s.replace(/\+/g, '%2B'), 'path'))
    .join('/')
  const { query, includes } = canonicalQuery(rawQuery)
  return { path, key: query ? `${path}?${query}` : path, includes }
}
