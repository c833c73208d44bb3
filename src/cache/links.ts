// Pagination links (meta.pagination.links) point at JobProgress: a client following `next` would go
// around the proxy (a 401 without the token, or its proxy key sent elsewhere). They are rewritten
// onto the proxy's public URL at the moment of answering; stored entries keep JobProgress's own
// links, so an entry is never stored with one client's Host in it.
//
// One function, Buffer in, Buffer out (the body as stored, the body as sent), so that it can sit
// after any decoding the store does. Only the links object is re-serialised: the rest of the bytes
// are JobProgress's, untouched (PHP's escaped slashes, number formats). Cheap on the hit path: a
// native search for "links" first, and the links object's place and its rewritten bytes are
// remembered per stored body (and per base: PUBLIC_URL, or each Host clients use).
import { API_PREFIX } from '../safety.js'

const Q = 0x22
const BS = 0x5c
const LB = 0x7b
const RB = 0x7d
const LS = 0x5b
const RS = 0x5d
const COLON = 0x3a
const COMMA = 0x2c

interface Found {
  /** the links object, [start, end) in the body */
  start: number
  end: number
  links: Record<string, unknown>
  /** the rewritten links object per base; null: nothing to rewrite for that base */
  byBase: Map<string, Buffer | null>
}

const found = new WeakMap<Buffer, Found | null>()
const MAX_BASES = 8

/**
 * The body with its meta.pagination.links rewritten onto `base` (e.g. http://127.0.0.1:8080 or
 * PUBLIC_URL; a function is called only when the body has links): a link whose path starts with
 * `upstreamPath` (the upstream base path, /api/v3) becomes base + /api/v3 + the rest. Returns `body`
 * itself when there is nothing to rewrite.
 */
export function rewritePaginationLinks(body: Buffer, baseOrFn: string | (() => string), upstreamPath: string): Buffer {
  let f = found.get(body)
  if (f === undefined) {
    f = body.indexOf('"links"') < 0 ? null : locate(body)
    found.set(body, f)
  }
  if (f === null) return body
  const base = typeof baseOrFn === 'string' ? baseOrFn : baseOrFn()
  let links = f.byBase.get(base)
  if (links === undefined) {
    let changed = false
    const out: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(f.links)) {
      const v = typeof value === 'string' ? rewriteLink(value, base, upstreamPath) : value
      if (v !== value) changed = true
      out[name] = v
    }
    links = changed ? Buffer.from(JSON.stringify(out)) : null
    if (f.byBase.size >= MAX_BASES) f.byBase.clear()
    f.byBase.set(base, links)
  }
  if (links === null) return body
  return Buffer.concat([body.subarray(0, f.start), links, body.subarray(f.end)])
}

/** One link: absolute (any origin: JobProgress may name itself http:// behind its TLS) or rooted. */
export function rewriteLink(link: string, base: string, upstreamPath: string): string {
  const origin = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(link)
  const rest = origin ? link.slice(origin[0].length) : link.startsWith('/') && !link.startsWith('//') ? link : undefined
  if (rest === undefined) return link
  const next = rest.charCodeAt(upstreamPath.length)
  if (!rest.startsWith(upstreamPath) || !(Number.isNaN(next) || next === 0x2f || next === 0x3f || next === 0x23)) return link
  return base + API_PREFIX + rest.slice(upstreamPath.length)
}

function locate(b: Buffer): Found | null {
  const root = skipWs(b, 0)
  if (b[root] !== LB) return null
  const meta = member(b, root, 'meta')
  if (!meta || b[meta[0]] !== LB) return null
  const pagination = member(b, meta[0], 'pagination')
  if (!pagination || b[pagination[0]] !== LB) return null
  const span = member(b, pagination[0], 'links')
  if (!span || b[span[0]] !== LB) return null // [] (PHP's empty array) or not an object: nothing to do
  let links: unknown
  try {
    links = JSON.parse(b.toString('utf8', span[0], span[1]))
  } catch {
    return null
  }
  if (!links || typeof links !== 'object' || Object.keys(links).length === 0) return null
  return { start: span[0], end: span[1], links: links as Record<string, unknown>, byBase: new Map() }
}

function isWs(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

function skipWs(b: Buffer, i: number): number {
  while (i < b.length && isWs(b[i])) i++
  return i
}

/** The index of the quote closing the string that opens at i; -1 when there is none. */
function stringEnd(b: Buffer, i: number): number {
  let j = i
  for (;;) {
    j = b.indexOf(Q, j + 1)
    if (j < 0) return -1
    let k = j - 1
    while (b[k] === BS) k--
    if ((j - 1 - k) % 2 === 0) return j
  }
}

/** The index just after the JSON value that starts at i; -1 when it does not end. */
function skipValue(b: Buffer, i: number): number {
  const c = b[i]
  if (c === Q) {
    const end = stringEnd(b, i)
    return end < 0 ? -1 : end + 1
  }
  if (c === LB || c === LS) {
    let depth = 0
    for (let j = i; j < b.length; j++) {
      const d = b[j]
      if (d === Q) {
        j = stringEnd(b, j)
        if (j < 0) return -1
      } else if (d === LB || d === LS) depth++
      else if ((d === RB || d === RS) && --depth === 0) return j + 1
    }
    return -1
  }
  let j = i
  while (j < b.length && b[j] !== COMMA && b[j] !== RB && b[j] !== RS && !isWs(b[j])) j++
  return j
}

/** In the object that opens at i, the value of the member `name`: [start, end), or undefined. */
function member(b: Buffer, i: number, name: string): [number, number] | undefined {
  i = skipWs(b, i + 1)
  if (b[i] === RB) return undefined
  for (;;) {
    if (b[i] !== Q) return undefined
    const keyEnd = stringEnd(b, i)
    if (keyEnd < 0) return undefined
    const isName = keyEnd - i - 1 === name.length && b.toString('latin1', i + 1, keyEnd) === name
    i = skipWs(b, keyEnd + 1)
    if (b[i] !== COLON) return undefined
    i = skipWs(b, i + 1)
    const end = skipValue(b, i)
    if (end < 0) return undefined
    if (isName) return [i, end]
    i = skipWs(b, end)
    if (b[i] !== COMMA) return undefined
    i = skipWs(b, i + 1)
  }
}
