// Request paths that must never reach the upstream, checked before routing does anything with them.
// undici and WHATWG URL normalise `/api/v3/../../x` (and `%2e%2e`, and `\`) into `/x`: reject first.
import type { IncomingHttpHeaders } from 'node:http'
import { BadRequest } from './errors.js'

export const API_PREFIX = '/api/v3'

/** A GET or HEAD must not carry a body: a Content-Length other than 0, or any Transfer-Encoding. */
export function carriesBody(h: IncomingHttpHeaders): boolean {
  const length = h['content-length']
  return (!!length && length !== '0') || !!h['transfer-encoding']
}

export interface SplitUrl {
  /** the path under /api/v3, still percent-encoded, '' or starting with / */
  rawPath: string
  /** '' or '?...' as sent */
  rawQuery: string
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/

// URLs already found safe, and their parts (the hit path asks for the same few URLs again and again)
const checked = new Map<string, SplitUrl>()

/** Throws BAD_REQUEST for a path that is unsafe to forward; returns its parts otherwise (shared, frozen). */
export function checkApiUrl(url: string): SplitUrl {
  let known = checked.get(url)
  if (!known) {
    known = Object.freeze(check(url))
    // bounded: at most 2,000 URLs of at most 512 characters (2 MiB at worst)
    if (url.length <= 512) {
      if (checked.size >= 2_000) checked.clear()
      checked.set(url, known)
    }
  }
  return known
}

function check(url: string): SplitUrl {
  // The router matched /api/v3 after decoding and after dropping an absolute-form origin; the upstream
  // path is built from the raw target, so it must start with a literal /api/v3 followed by / or ?.
  const next = url.charCodeAt(API_PREFIX.length)
  if (!url.startsWith(API_PREFIX) || !(Number.isNaN(next) || next === 0x2f || next === 0x3f)) {
    throw new BadRequest('The request target must start with a literal /api/v3/ (no absolute-form target, no percent-encoded prefix)')
  }
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  const rawQuery = q < 0 ? '' : url.slice(q)
  const rawPath = path.slice(API_PREFIX.length)
  if (CONTROL.test(url)) throw new BadRequest('Control characters are not allowed in the URL')
  if (path.includes('\\')) throw new BadRequest('Backslashes are not allowed in the path')
  for (const segment of rawPath.split('/')) {
    let decoded: string
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      throw new BadRequest('Malformed percent-encoding in the path')
    }
    if (decoded === '.' || decoded === '..') throw new BadRequest('Dot segments (. and ..) are not allowed in the path')
    if (CONTROL.test(decoded)) throw new BadRequest('Control characters are not allowed in the path')
    if (decoded.includes('/') || decoded.includes('\\')) throw new BadRequest('Encoded slashes are not allowed in the path')
  }
  return { rawPath, rawQuery }
}
