// Cache keys: the path under /api/v3 plus the canonical query, so that requests JobProgress answers
// the same way share one entry, and requests it answers differently never do.
//
// JobProgress is Laravel: its query is parsed by PHP (parse_str rules) and includes go to Fractal.
// Only forms PHP parses to the same value are merged; when in doubt a form keeps its own entry
// (a lost hit costs one call, a wrong merge serves one request another's answer).
import { BadRequest } from '../errors.js'

export interface CacheKey {
  /** the path under /api/v3, percent-encoding normalised (only unreserved characters decoded), e.g. /jobs/11 */
  path: string
  /** path + '?' + canonical query (or the path alone) */
  key: string
  /** the relation names asked for with includes (for eviction by includes: a superset when unsure) */
  includes: readonly string[]
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    throw new BadRequest(`Malformed percent-encoding in the ${what}`)
  }
}

const UNRESERVED = /[A-Za-z0-9\-._~]/

/**
 * A path with its percent-encoding normalised without changing what it says: %XX of an unreserved
 * character is decoded (RFC 3986 6.2.2.2), every other %XX kept (upper-case hex), so an encoded
 * delimiter (%3F, %23, %26, ...) never becomes the delimiter itself.
 */
export function normalisePath(rawPath: string): string {
  // malformed or non-UTF-8 encoding: 400 as before (safety.ts rejects it too)
  for (const seg of rawPath.split('/')) decode(seg.replace(/\+/g, '%2B'), 'path')
  return rawPath.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16))
    return UNRESERVED.test(c) ? c : `%${hex.toUpperCase()}`
  })
}

type Pair = [name: string, value: string]

/** PHP's top-level variable of a parameter name: before the first '[', leading spaces dropped, ' ' and '.' as '_'. */
function phpBase(name: string): string {
  const b = name.indexOf('[')
  return (b < 0 ? name : name.slice(0, b)).replace(/^ +/, '').replace(/[ .]/g, '_')
}

/** Names PHP reads in one plain way: `base` or `base[..][..]`, no stray brackets, no NUL. */
const PLAIN_NAME = /^[^[\]\0]*(\[[^[\]\0]*\])*$/

/** An include and, for `a.b` (Fractal also includes the parent), `a` too; modifiers (`:x`) dropped. */
function addNames(into: Set<string>, item: string): void {
  const name = item.split(':', 1)[0]!
  const parts = name.split('.')
  for (let i = 1; i <= parts.length; i++) {
    const n = parts.slice(0, i).join('.')
    if (n) into.add(n)
  }
}

const encodePair = ([n, v]: Pair) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`

/**
 * What PHP makes of the includes parameters (in order), as Fractal will read them: the list of
 * requested names, or undefined when the form is one we do not merge (kept as sent).
 *  - `includes=a,b` (a string) is split on commas; `includes[]`/`includes[N]` items are taken whole
 *  - a later plain `includes=` replaces an array, a later `includes[]` replaces a string
 *  - `includes[N]` twice: the later value wins (PHP overwrites the index)
 * Not merged: other index forms (`includes[01]`, `includes[x]`, nested), empty names, names with
 * ':' (Fractal's modifiers: the first of two wins, so order matters).
 */
function phpIncludes(pairs: readonly Pair[]): string[] | undefined {
  let str: string | undefined
  let arr: Map<number, string> | undefined
  let next = 0
  for (const [name, value] of pairs) {
    if (name === 'includes') {
      str = value
      arr = undefined
      continue
    }
    const m = /^includes\[(|0|[1-9]\d{0,8})\]$/.exec(name)
    if (!m) return undefined
    if (!arr) {
      arr = new Map()
      next = 0
      str = undefined
    }
    const index = m[1] === '' ? next : Number(m[1])
    arr.set(index, value) // an overwritten index keeps its place, as in PHP
    next = Math.max(next, index + 1)
  }
  const items = arr ? [...arr.values()] : str !== undefined ? str.split(',') : []
  if (items.some((i) => i === '' || i.includes(':'))) return undefined
  return items
}

/**
 * Canonical form of a query. Parameters are grouped by PHP's top-level name; groups are sorted by
 * that name (PHP never mixes two groups), and inside a group the order is kept (PHP's later value
 * wins, arrays keep their order). The includes group becomes one sorted set `includes[]=a&...` when
 * phpIncludes understands it. Percent-encoding is normalised (`+` and `%20` are both a space to PHP).
 * A name PHP would mangle (stray brackets, NUL) keeps the whole query in its sent order.
 */
export function canonicalQuery(rawQuery: string): { query: string; includes: string[] } {
  const q = rawQuery.startsWith('?') ? rawQuery.slice(1) : rawQuery
  const pairs: Pair[] = []
  for (const part of q.split('&')) {
    if (!part) continue
    const eq = part.indexOf('=')
    pairs.push([decode(eq < 0 ? part : part.slice(0, eq), 'query'), eq < 0 ? '' : decode(part.slice(eq + 1), 'query')])
  }
  // for eviction by includes: every name that may be asked for, whatever the form
  const mentioned = new Set<string>()
  for (const [n, v] of pairs) if (phpBase(n) === 'includes') for (const i of v.split(',')) addNames(mentioned, i.trim())

  if (!pairs.every(([n]) => PLAIN_NAME.test(n))) {
    return { query: pairs.map(encodePair).join('&'), includes: [...mentioned].sort() }
  }
  const groups = new Map<string, Pair[]>()
  for (const p of pairs) {
    const base = phpBase(p[0])
    const g = groups.get(base)
    if (g) g.push(p)
    else groups.set(base, [p])
  }
  let includes = [...mentioned].sort()
  const out: string[] = []
  for (const base of [...groups.keys()].sort()) {
    const g = groups.get(base)!
    const set = base === 'includes' ? phpIncludes(g) : undefined
    if (set) {
      const items = [...new Set(set)].sort()
      for (const i of items) out.push(encodePair(['includes[]', i]))
      const names = new Set<string>()
      for (const i of items) addNames(names, i)
      includes = [...names].sort()
    } else {
      for (const p of g) out.push(encodePair(p))
    }
  }
  return { query: out.join('&'), includes }
}

/** rawPath: the path under /api/v3 as sent (percent-encoded); rawQuery: '' or '?...' */
export function cacheKey(rawPath: string, rawQuery: string): CacheKey {
  const path = normalisePath(rawPath)
  const { query, includes } = canonicalQuery(rawQuery)
  return { path, key: query ? `${path}?${query}` : path, includes }
}
