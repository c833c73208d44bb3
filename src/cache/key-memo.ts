// The hit path's memo: raw URL -> cache key and TTL rule, bounded by bytes (a long unique URL must
// not pin 30 KB for ever). HttpCache asks it for every request (http-cache.ts #keyOf).
import { LRUCache } from 'lru-cache'
import { cacheKey, type CacheKey } from './key.js'
import { ttlFor, type CacheRules } from './rules.js'

/** Bound of the URL -> key memo (bytes, estimated from string lengths). */
export const KEY_MEMO_BYTES = 4 * 1024 * 1024

function memoSize(v: { k: CacheKey }, raw: string): number {
  // UTF-16 strings: the raw URL, the key, the path, the includes; plus the objects themselves
  let chars = raw.length + v.k.key.length + v.k.path.length
  for (const i of v.k.includes) chars += i.length
  return chars * 2 + 200
}

export class KeyMemo {
  readonly #keys = new LRUCache<string, { k: CacheKey; ttlMs: number }>({ maxSize: KEY_MEMO_BYTES, sizeCalculation: memoSize })
  readonly #rules: CacheRules
  readonly #ttlSeconds: number

  constructor(rules: CacheRules, ttlSeconds: number) {
    this.#rules = rules
    this.#ttlSeconds = ttlSeconds
  }

  /** bytes held (estimated), at most KEY_MEMO_BYTES */
  get bytes(): number {
    return this.#keys.calculatedSize
  }

  /** cacheKey and TTL rule for a raw URL, remembered: the hit path computes neither twice. */
  keyOf(rawPath: string, rawQuery: string): { k: CacheKey; ttlMs: number } {
    const raw = rawPath + rawQuery
    let known = this.#keys.get(raw)
    if (!known) {
      const k = cacheKey(rawPath, rawQuery)
      known = { k, ttlMs: ttlFor(this.#rules, k.path, this.#ttlSeconds) * 1000 }
      this.#keys.set(raw, known)
    }
    return known
  }
}
