// One line per request, without the query (it may carry personal data) and never a header, and the
// request counters. Label lookups are remembered (prom-client hashes labels on every call), and the
// log line's object is built only when the line is written.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { ClientAuth } from '../auth.js'
import { cellOf, type Cell } from '../counter-cells.js'
import { resourceOf, type Metrics } from '../metrics.js'
import type { SplitUrl } from '../safety.js'
import type { ProxyState } from '../state.js'

export function registerRequestLog(app: FastifyInstance, o: { metrics: Metrics; clientAuth: ClientAuth; state: ProxyState }): void {
  const { metrics, clientAuth, state } = o
  const requestCounters = new Map<string, Cell>()
  const resourceCounters = new Map<string, Map<string, Cell>>()
  const resources = new WeakMap<SplitUrl, string>()
  app.addHook('onResponse', (request, reply, done) => {
    const label = `${request.method} ${reply.statusCode}`
    let counter = requestCounters.get(label)
    if (!counter) requestCounters.set(label, (counter = cellOf(metrics.requests, { method: request.method, status: String(reply.statusCode) })))
    counter.inc()
    if (clientAuth.enabled && request.clientName) metrics.clientRequests.labels(request.clientName).inc()
    if (request.api) {
      const result = request.cacheResult?.toLowerCase() ?? (request.method === 'GET' || request.method === 'HEAD' ? 'none' : 'write')
      let resource = resources.get(request.api)
      if (!resource) resources.set(request.api, (resource = resourceOf(request.api.rawPath)))
      let byResource = resourceCounters.get(result)
      if (!byResource) resourceCounters.set(result, (byResource = new Map<string, Cell>()))
      let c = byResource.get(resource)
      if (!c) byResource.set(resource, (c = cellOf(metrics.resourceRequests, { resource, result })))
      c.inc()
    }
    state.requests++
    const log = request.log as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }
    if (log.isLevelEnabled && !log.isLevelEnabled('info')) return done()
    const path = request.url.split('?', 1)[0]
    request.log.info(
      {
        method: request.method,
        path,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        cache: request.cacheResult,
        client: request.clientName || undefined,
      },
      'request',
    )
    done()
  })
}
