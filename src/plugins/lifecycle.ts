// Shutdown, and the timers that live as long as the app. Not ready at once (load balancers stop
// sending), keep serving for SHUTDOWN_DELAY_MS, then refuse new calls and give calls still waiting for
// the budget a 503: they were never sent, and another replica (or a retry) can take them. Calls in
// flight run to their end. Then the upstream, Redis and the disk tier close, in that order.
import type { FastifyInstance } from 'fastify'
import { trackSockets } from '../idle-sockets.js'
import type { ProxyState } from '../state.js'

export function registerLifecycle(app: FastifyInstance, o: { state: ProxyState; shutdownDelayMs: number }): void {
  const { state } = o
  const { upstream } = app
  // the token's expiry is checked at start (Upstream) and then twice a day
  const expiryCheck = setInterval(() => upstream.checkTokenExpiry(), 12 * 3_600_000)
  expiryCheck.unref()
  const sockets = trackSockets(app.server)
  app.addHook('preClose', async () => {
    state.ready = false
    if (o.shutdownDelayMs) await new Promise((r) => setTimeout(r, o.shutdownDelayMs))
    state.closing = true
    // every answer from now on ends its connection, so that keep-alive clients let go (a listener
    // added only now: no hook runs on every answer before shutdown)
    app.server.prependListener('request', (_req: unknown, res: { setHeader(n: string, v: string): void }) => res.setHeader('connection', 'close'))
    upstream.throttle.rejectWaiting()
    sockets.closeIdle()
  })
  app.addHook('onClose', async () => {
    clearInterval(expiryCheck)
    await upstream.close()
    await app.distributed?.close()
    app.persistence?.close()
  })
}
