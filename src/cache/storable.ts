// Whether an answer may become an entry (like undici's canCacheResponse): the one place of that
// decision, asked by the upstream fill (fill.ts) and by the write refresh (http-cache.ts afterWrite).
import { responseNoStore } from './directives.js'

// Answers JobProgress sends for the request only, never to be stored or replayed.
export const NOT_STORED = new Set(['date', 'content-length', 'age', 'etag', 'x-cache', 'cache-status'])

export interface StoreCandidate {
  /** the key's TTL rule; 0 or undefined: never stored (a bypass, or a path the rules do not cache) */
  ttlMs: number | undefined
  status: number
  /** the upstream's Cache-Control (read by the one parser, directives.ts) */
  cacheControl: string | readonly string[] | undefined
  contentType: string | string[] | undefined
  body: Buffer
  maxEntryBytes: number
  /** a write evicted the key while the call was out: its answer may be from before the write */
  invalidated?: boolean
  /** the answer reflected the token */
  leaked?: boolean
  /** the body was assembled from an entry's JSON (write refresh): not parsed again */
  knownJson?: boolean
}

/** JobProgress answers JSON: a 200 that is not (a maintenance page, a proxy's error) is passed on, never stored. */
export function isJson(contentType: string | string[] | undefined, body: Buffer): boolean {
  if (!/\bjson\b/i.test(String(contentType ?? ''))) return false
  try {
    JSON.parse(body.toString('utf8'))
    return true
  } catch {
    return false
  }
}

/** A 200 JSON answer, cacheable by rule and by the upstream, within the entry size, not invalidated, no leaked token. */
export function isStorable(c: StoreCandidate): boolean {
  return !!c.ttlMs && c.status === 200 && !c.leaked && !c.invalidated && c.body.length <= c.maxEntryBytes && !responseNoStore(c.cacheControl) && (c.knownJson === true || isJson(c.contentType, c.body))
}
