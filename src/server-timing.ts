// Server-Timing (W3C) on every answer: what the cache did, how long the request waited for a slot of
// the upstream budget, and how long JobProgress took. Browsers show it in devtools' Timing tab;
// `curl -sD- -o/dev/null` shows it too.
//   Server-Timing: cache;desc=MISS, budget;dur=812.4, upstream;dur=143.0, total;dur=957.9
import type { FastifyInstance } from 'fastify'
import type { CallTiming } from './upstream/accounting.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** the budget wait and upstream time of the calls this request made or joined (set for /api/v3) */
    timing: CallTiming | null
  }
}

/** milliseconds with one decimal (toFixed(1) without its cost: this runs on every hit) */
function ms(v: number): string {
  const tenths = Math.round(v * 10)
  return `${Math.floor(tenths / 10)}.${tenths % 10}`
}

const CACHE_PART = new Map(['HIT', 'MISS', 'STALE', 'BYPASS', 'ABORTED'].map((r) => [r, `cache;desc=${r}, `]))

/** The header's value; `cache` is the X-Cache result when the answer went through the cache. */
export function serverTimingValue(cache: string | undefined, t: CallTiming | undefined, totalMs: number): string {
  let v = (cache && CACHE_PART.get(cache)) || ''
  if (t && (t.calls > 0 || t.budgetMs > 0)) v += `budget;dur=${ms(t.budgetMs)}, `
  if (t && t.calls > 0) v += `upstream;dur=${ms(t.upstreamMs)}, `
  return `${v}total;dur=${ms(totalMs)}`
}

export function registerServerTiming(app: FastifyInstance): void {
  app.decorateRequest('timing', null)
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('server-timing', serverTimingValue(request.cacheResult, request.timing ?? undefined, reply.elapsedTime))
    done(null, payload)
  })
}
