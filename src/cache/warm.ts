// Warm start: entries that expired while the proxy was down are served STALE at once, and refreshed
// here with spare budget, most-requested first, one at a time, and only while no client call waits
// and more than a quarter of the window's budget is left: never ahead of a client.
import type { FastifyBaseLogger } from 'fastify'
import type { Throttle } from '../upstream/throttle.js'
import type { HttpCache } from './http-cache.js'

export const WARM_CLIENT = 'warm-start'

export interface Warmer {
  readonly done: number
  stop(): void
}

export function startWarm(o: { keys: string[]; cache: HttpCache; throttle: Throttle; limit: number; log: FastifyBaseLogger; everyMs?: number }): Warmer {
  const reserve = Math.ceil(o.limit / 4)
  let i = 0
  let running = false
  let stopped = false
  let done = 0
  const finish = () => {
    stopped = true
    clearInterval(timer)
  }
  const tick = async () => {
    if (stopped || running) return
    if (i >= o.keys.length) {
      o.log.info({ refreshed: done }, 'warm start: entries that expired while the proxy was down are refreshed')
      return finish()
    }
    if (o.throttle.depth > 0) return
    running = true
    try {
      if ((await o.throttle.budgetLeft()) <= reserve || o.throttle.depth > 0 || stopped) return
      while (i < o.keys.length) {
        const p = o.cache.refreshStale(o.keys[i++]!, WARM_CLIENT)
        if (!p) continue
        await p
        done++
        break
      }
    } finally {
      running = false
    }
  }
  const failed = (err: unknown) => o.log.warn({ err }, 'warm start: a refresh failed')
  const timer = setInterval(() => {
    tick().catch(failed)
  }, o.everyMs ?? 100)
  timer.unref()
  tick().catch(failed)
  return {
    get done() {
      return done
    },
    stop: finish,
  }
}
