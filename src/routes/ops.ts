// /healthz, /readyz and /metrics: for orchestrators and Prometheus.
import type { FastifyInstance } from 'fastify'
import type { ProxyState } from '../state.js'
import type { Metrics } from '../metrics.js'

export interface ReadinessProbe {
  ready(): boolean
}

export function registerOpsRoutes(app: FastifyInstance, o: { state: ProxyState; metrics: Metrics; redis: ReadinessProbe | undefined }): void {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    if (!o.state.ready) return reply.code(503).send({ status: 'shutting_down' })
    // still serving (first tier, a local share of the budget), but not as one proxy with the others
    if (o.redis && !o.redis.ready()) return reply.code(503).send({ status: 'degraded', redis: 'down' })
    return o.redis ? { status: 'ready', redis: 'up' } : { status: 'ready' }
  })

  app.get('/metrics', async (_request, reply) => {
    reply.type(o.metrics.registry.contentType)
    return o.metrics.registry.metrics()
  })
}
