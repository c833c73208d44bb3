// Projection: JobProgress (Laravel + Fractal) adds one top-level key per included relation to an item,
// and to each item of a list, and changes nothing else. So an answer fetched with includes[] S holds
// the answer to the same request with any R contained in S: remove the keys of S minus R. This file
// does that on the stored bytes (key order and every other byte kept), and refuses whenever the answer
// does not have the expected shape. Whether the upstream really behaves so is checked per route in
// verify.ts before a projection is served.
import { canonicalQuery, cacheKey, type CacheKey } from './key.js'

/** `/jobs/11/notes` -> `/jobs/{id}/notes`: numeric segments are ids. */
export function routeOf(path: string): string {
  return path.replace(/\/\d+(?=\/|$)/g, '/{id}')
}

/** The key without its includes: requests with the same base differ only in includes[]. */
export function baseOf(k: CacheKey): { base: string; other: string } {
  const q = k.key.indexOf('?')
  if (q < 0) return { base: k.key, other: '' }
  const other = k.key
    .slice(q + 1)
    .split('&')
    .filter((p) => !p.startsWith('includes%5B%5D='))
    .join('&')
  return { base: other ? `${k.path}?${other}` : k.path, other }
}

/**
 * Whether the key's includes are a set the proxy understood (the canonical `includes[]=` items):
 * other forms (modifiers `a:limit(1)`, `includes[x]`, ...) are kept as sent in the key, and no lever
 * touches them, since what JobProgress makes of them is not known for sure.
 */
export function understood(k: CacheKey): boolean {
  const q = k.key.indexOf('?')
  if (q < 0) return true
  for (const p of k.key.slice(q + 1).split('&')) {
    if (p.startsWith('includes%5B%5D=')) continue
    let name = p.split('=', 1)[0]!
    try {
      name = decodeURIComponent(name)
    } catch {
      return false
    }
    if (/^ *includes(?:$|\[)/.test(name)) return false
  }
  return true
}

/** The raw query and key for the same base with another includes set. */
export function withIncludes(rawPath: string, other: string, includes: readonly string[]): { rawQuery: string; k: CacheKey } {
  const parts = other ? [other] : []
  for (const i of includes) parts.push(`includes[]=${encodeURIComponent(i)}`)
  const rawQuery = parts.length ? `?${parts.join('&')}` : ''
  return { rawQuery, k: cacheKey(rawPath, rawQuery) }
}

const dotted = (xs: readonly string[]) => xs.filter((x) => x.includes('.'))
const top = (xs: readonly string[]) => new Set(xs.map((x) => x.split('.', 1)[0]!))

/**
 * True when an answer fetched with includes `wide` holds the answer for `narrow`: narrow is a subset,
 * and both name the same dotted includes (a dotted name nests; it only matches itself).
 */
export function covers(wide: readonly string[], narrow: readonly string[]): boolean {
  const w = new Set(wide)
  for (const n of narrow) if (!w.has(n)) return false
  const dw = dotted(wide)
  const dn = dotted(narrow)
  return dw.length === dn.length && dw.every((d) => dn.includes(d))
}

/** The top-level keys to remove from each item to turn the `wide` answer into the `narrow` one. */
export function keysToRemove(wide: readonly string[], narrow: readonly string[]): string[] {
  const keep = top(narrow)
  return [...top(wide)].filter((k) => !keep.has(k))
}

/** includes[] names in the order a raw query gives them (duplicates dropped). */
export function includesInOrder(rawQuery: string): string[] {
  const q = rawQuery.startsWith('?') ? rawQuery.slice(1) : rawQuery
  const out: string[] = []
  for (const part of q.split('&')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    let name: string
    let value: string
    try {
      name = decodeURIComponent(part.slice(0, eq).replace(/\+/g, ' '))
      value = decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' '))
    } catch {
      continue
    }
    if (!/^includes(\[\d*\])?$/.test(name)) continue
    for (const v of value.split(',')) {
      const t = v.trim()
      if (t && !out.includes(t)) out.push(t)
    }
  }
  return out
}

// ------------------------------------------------------------------ a byte-exact JSON scanner
// Works on a latin1 string of the body: one character per byte, so slices map back to the same
// bytes; every structural character is ASCII and never part of a multi-byte UTF-8 sequence.

export interface Member {
  key: string
  start: number
  /** the value's start and end */
  vStart: number
  end: number
}

class Shape extends Error {}

function ws(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i)
    if (c === 32 || c === 9 || c === 10 || c === 13) i++
    else return i
  }
}

function skipString(s: string, i: number): number {
  if (s[i] !== '"') throw new Shape()
  for (i++; i < s.length; i++) {
    const c = s[i]
    if (c === '\\') i++
    else if (c === '"') return i + 1
  }
  throw new Shape()
}

function skipValue(s: string, i: number): number {
  const c = s[i]
  if (c === '"') return skipString(s, i)
  if (c === '{' || c === '[') {
    let depth = 0
    for (; i < s.length; i++) {
      const d = s[i]
      if (d === '"') {
        i = skipString(s, i) - 1
      } else if (d === '{' || d === '[') depth++
      else if (d === '}' || d === ']') {
        if (--depth === 0) return i + 1
      }
    }
    throw new Shape()
  }
  const m = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(s.slice(i, i + 64))
  if (!m) throw new Shape()
  return i + m[0].length
}

/** The members of the object starting at s[i] === '{', and the index after it. */
function members(s: string, i: number): { list: Member[]; end: number } {
  if (s[i] !== '{') throw new Shape()
  const list: Member[] = []
  i = ws(s, i + 1)
  if (s[i] === '}') return { list, end: i + 1 }
  for (;;) {
    const start = i
    const keyEnd = skipString(s, i)
    const key = JSON.parse(Buffer.from(s.slice(start, keyEnd), 'latin1').toString('utf8')) as string
    i = ws(s, keyEnd)
    if (s[i] !== ':') throw new Shape()
    const vStart = ws(s, i + 1)
    const end = skipValue(s, vStart)
    list.push({ key, start, vStart, end })
    i = ws(s, end)
    if (s[i] === ',') {
      i = ws(s, i + 1)
      continue
    }
    if (s[i] === '}') return { list, end: i + 1 }
    throw new Shape()
  }
}

/** The members of the JSON object at s[i] (a latin1 string of the bytes); undefined when not one. */
export function objectMembers(s: string, i = 0): Member[] | undefined {
  try {
    i = ws(s, i)
    const { list, end } = members(s, i)
    return ws(s, end) === s.length || i > 0 ? list : undefined
  } catch (err) {
    if (err instanceof Shape || err instanceof SyntaxError) return undefined
    throw err
  }
}

/** One item with the keys removed; refuses when the included keys are not its last keys (Fractal adds them last). */
function projectItem(s: string, i: number, remove: ReadonlySet<string>, included: ReadonlySet<string>): { text: string; end: number } {
  const { list, end } = members(s, i)
  const seen = new Set<string>()
  let inIncludes = false
  for (const m of list) {
    if (seen.has(m.key)) throw new Shape() // duplicate keys: not a shape we can reason about
    seen.add(m.key)
    if (included.has(m.key)) inIncludes = true
    else if (inIncludes) throw new Shape() // a base field after an included one, or an include named like a field
  }
  const kept = list.filter((m) => !remove.has(m.key)).map((m) => s.slice(m.start, m.end))
  return { text: `{${kept.join(',')}}`, end }
}

/** A pagination link with its includes replaced by `includes` (in that order), other parameters kept. */
export function rewriteLink(link: string, includes: readonly string[]): string {
  const q = link.indexOf('?')
  if (q < 0) return link
  const hash = link.indexOf('#', q)
  const query = link.slice(q + 1, hash < 0 ? undefined : hash)
  const pairs = query.split('&')
  let at = -1
  let rawName = ''
  const rest: string[] = []
  for (const p of pairs) {
    const eq = p.indexOf('=')
    let name = eq < 0 ? p : p.slice(0, eq)
    try {
      name = decodeURIComponent(name)
    } catch {
      /* kept as is */
    }
    if (/^includes(\[\d*\])?$/.test(name)) {
      if (at < 0) {
        at = rest.length
        rawName = eq < 0 ? p : p.slice(0, eq)
      }
      continue
    }
    rest.push(p)
  }
  if (at < 0) return link
  const comma = !/(\[|%5B)/i.test(rawName)
  const ins =
    includes.length === 0
      ? []
      : comma
        ? [`${rawName}=${includes.map(encodeURIComponent).join(',')}`]
        : includes.map((i) => `${rawName.replace(/(\[|%5B)\d+(\]|%5D)/i, '$1$2')}=${encodeURIComponent(i)}`)
  rest.splice(at, 0, ...ins)
  return link.slice(0, q) + (rest.length ? '?' + rest.join('&') : '') + (hash < 0 ? '' : link.slice(hash))
}

/**
 * The answer for `narrow` from a body fetched with includes `wide` (covers(wide, narrow) must hold):
 * `{"data":{...}}` or `{"data":[...]}` with the keys of wide minus narrow removed from the item or from
 * each list item, and a list's pagination links asking for `narrowOrder`. Undefined when the body
 * does not have that shape.
 */
export function project(body: Buffer, wide: readonly string[], narrow: readonly string[], narrowOrder: readonly string[] = narrow): Buffer | undefined {
  const remove = new Set(keysToRemove(wide, narrow))
  const included = top(wide)
  const s = body.toString('latin1')
  try {
    const root = members(s, ws(s, 0))
    if (ws(s, root.end) !== s.length) return undefined
    const data = root.list.find((m) => m.key === 'data')
    if (!data) return undefined
    const out: string[] = []
    let pos = 0
    const c = s[data.vStart]
    if (c === '{') {
      const p = projectItem(s, data.vStart, remove, included)
      out.push(s.slice(0, data.vStart), p.text)
      pos = p.end
    } else if (c === '[') {
      out.push(s.slice(0, data.vStart), '[')
      const items: string[] = []
      let i = ws(s, data.vStart + 1)
      if (s[i] !== ']') {
        for (;;) {
          if (s[i] !== '{') return undefined
          const p = projectItem(s, i, remove, included)
          items.push(p.text)
          i = ws(s, p.end)
          if (s[i] === ',') {
            i = ws(s, i + 1)
            continue
          }
          if (s[i] !== ']') return undefined
          break
        }
      }
      out.push(items.join(','), ']')
      pos = i + 1
      // pagination links repeat the request's query: they must ask for the narrower includes
      const meta = root.list.find((m) => m.key === 'meta')
      if (meta && s[meta.vStart] === '{') {
        const pag = members(s, meta.vStart).list.find((m) => m.key === 'pagination')
        const links = pag && s[pag.vStart] === '{' ? members(s, pag.vStart).list.find((m) => m.key === 'links') : undefined
        if (links && s[links.vStart] === '{') {
          if (meta.start < data.start) return undefined // links before the data: not JobProgress's order
          out.push(s.slice(pos, links.vStart))
          const ls = members(s, links.vStart).list.map((m) => {
            if (s[m.vStart] !== '"') return s.slice(m.start, m.end)
            const raw = s.slice(m.vStart, m.end)
            const value = JSON.parse(Buffer.from(raw, 'latin1').toString('utf8')) as string
            let text = JSON.stringify(rewriteLink(value, narrowOrder))
            if (raw.includes('\\/')) text = text.replace(/\//g, '\\/')
            return s.slice(m.start, m.vStart) + Buffer.from(text, 'utf8').toString('latin1')
          })
          out.push(`{${ls.join(',')}}`)
          pos = members(s, links.vStart).end
        }
      }
    } else {
      return undefined
    }
    out.push(s.slice(pos))
    return Buffer.from(out.join(''), 'latin1')
  } catch (err) {
    if (err instanceof Shape || err instanceof SyntaxError) return undefined
    throw err
  }
}

/** Pagination links compared by meaning: path and canonical query, not origin nor parameter order. */
function normalLinks(v: unknown): unknown {
  const links = (v as { meta?: { pagination?: { links?: Record<string, unknown> } } })?.meta?.pagination?.links
  if (links && typeof links === 'object') {
    for (const [k, l] of Object.entries(links)) {
      if (typeof l !== 'string') continue
      try {
        const u = new URL(l)
        links[k] = `${u.pathname}?${canonicalQuery(u.search).query}`
      } catch {
        /* compared as is */
      }
    }
  }
  return v
}

/** Whether two JSON answers say the same (key order included; pagination links by meaning). */
export function sameAnswer(a: Buffer, b: Buffer): boolean {
  try {
    return JSON.stringify(normalLinks(JSON.parse(a.toString('utf8')))) === JSON.stringify(normalLinks(JSON.parse(b.toString('utf8'))))
  } catch {
    return false
  }
}
