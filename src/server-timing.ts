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

const ms = (v: number) => (Math.round(v * 10) / 10).toFixed(1)

/** The header's value; `cache` is the X-Cache result when the answer went through the cache. */
export function serverTimingValue(cache: string | undefined, t: CallTiming | undefined, totalMs: number): string {
  const parts: string[] = []
  if (cache && /^[A-Z]+$/.test(cache)) parts.push(`cache;desc=${cache}`)
  if (t && (t.calls > 0 || t.budgetMs > 0)) parts.push(`budget;dur=${ms(t.budgetMs)}`)
  if (t && t.calls > 0) parts.push(`upstream;dur=${ms(t.upstreamMs)}`)
  parts.push(`total;dur=${ms(totalMs)}`)
  return parts.join(', ')
}

export function registerServerTiming(app: FastifyInstance): void {
  app.decorateRequest('timing', null)
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('server-timing', serverTimingValue(request.cacheResult, request.timing ?? undefined, reply.elapsedTime))
    done(null, payload)
  })
}
