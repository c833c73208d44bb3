// Cache-Control, read once and properly (RFC 9111 section 5.2): a comma-separated list of
// `name` or `name=value` (a token or a quoted string), names case-insensitive. This is the one parser
// of the proxy; the cache asks it for a client's request directives and for the upstream's no-store.

/** Every directive of a Cache-Control field, names lower-cased; a name without value maps to ''. */
export function parseCacheControl(header: string | readonly string[] | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>()
  if (header === undefined) return out
  const text = typeof header === 'string' ? header : header.join(',')
  let i = 0
  const n = text.length
  while (i < n) {
    // skip separators and whitespace
    while (i < n && (text[i] === ',' || text[i] === ' ' || text[i] === '\t')) i++
    let start = i
    while (i < n && text[i] !== '=' && text[i] !== ',') i++
    const name = text.slice(start, i).trim().toLowerCase()
    let value = ''
    if (text[i] === '=') {
      i++
      while (i < n && (text[i] === ' ' || text[i] === '\t')) i++
      if (text[i] === '"') {
        i++
        let v = ''
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n) i++
          v += text[i]
          i++
        }
        i++ // closing quote
        value = v
        while (i < n && text[i] !== ',') i++ // anything after the quoted string is ignored
      } else {
        start = i
        while (i < n && text[i] !== ',') i++
        value = text.slice(start, i).trim()
      }
    }
    if (name && /^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      const list = out.get(name)
      if (list) list.push(value)
      else out.set(name, [value])
    }
  }
  return out
}

/** A client's request directives, as the cache uses them. Seconds; undefined when absent or invalid. */
export interface RequestDirectives {
  noCache: boolean
  noStore: boolean
  onlyIfCached: boolean
  /** the client accepts an entry at most this old */
  maxAge?: number
  /** the client accepts a stale entry at most this long past its freshness (Infinity: any) */
  maxStale?: number
  /** the client wants an entry still fresh for at least this long */
  minFresh?: number
}

const seconds = (v: string): number | undefined => {
  if (!/^\d+$/.test(v)) return undefined
  const s = Number(v)
  return Number.isSafeInteger(s) ? s : 2 ** 31 // RFC 9111 1.2.2: too large means "very large"
}

/**
 * The request directives of RFC 9111 5.2.1. A directive given more than once keeps its strictest
 * value (the smallest max-age and max-stale, the largest min-fresh); an invalid value is ignored,
 * except max-age, which then means 0 (the conservative reading).
 */
export function requestDirectives(header: string | readonly string[] | undefined): RequestDirectives {
  const d: RequestDirectives = { noCache: false, noStore: false, onlyIfCached: false }
  if (header === undefined || header.length === 0) return d
  for (const [name, values] of parseCacheControl(header)) {
    switch (name) {
      case 'no-cache':
        d.noCache = true
        break
      case 'no-store':
        d.noStore = true
        break
      case 'only-if-cached':
        d.onlyIfCached = true
        break
      case 'max-age':
        d.maxAge = Math.min(...values.map((v) => seconds(v) ?? 0))
        break
      case 'max-stale': {
        const all = values.map((v) => (v === '' ? Infinity : seconds(v))).filter((v): v is number => v !== undefined)
        if (all.length) d.maxStale = Math.min(...all)
        break
      }
      case 'min-fresh': {
        const all = values.map(seconds).filter((v): v is number => v !== undefined)
        if (all.length) d.minFresh = Math.max(...all)
        break
      }
    }
  }
  return d
}

/** Whether a response's Cache-Control forbids storing it. */
export function responseNoStore(header: string | readonly string[] | undefined): boolean {
  const d = parseCacheControl(header)
  return d.has('no-store')
}
