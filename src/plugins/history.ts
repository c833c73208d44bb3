// The dashboard's 15 minutes of samples, with its timer: started here, stopped when the app closes.
import type { FastifyInstance } from 'fastify'
import { History } from '../history.js'
import type { ProxyState } from '../state.js'

export function registerHistory(app: FastifyInstance, o: { state: ProxyState; intervalMs: number }): History {
  const { cache, upstream } = app
  const history = new History(o.intervalMs, 15 * 60_000, async () => ({
    requests: o.state.requests,
    hits: cache.stats.hits,
    misses: cache.stats.misses,
    stale: cache.stats.stale,
    bypass: cache.stats.bypass,
    calls: upstream.throttle.stats.calls,
    throttled: upstream.throttle.stats.throttled,
    unauthorized: upstream.unauthorized,
    queue: upstream.throttle.depth,
    budget: await upstream.throttle.budgetLeft(),
    bytes: cache.store.bytes,
  }))
  history.start()
  app.addHook('onClose', async () => history.stop())
  return history
}
