// One line per request, without the query (it may carry personal data) and never a header, and the
// request counters. Label lookups are remembered (prom-client hashes labels on every call), and the
// log line's object is built only when the line is written.
import type { Answers } from '../answers.js'
import type { ClientAuth } from '../auth.js'
import { cellOf, type Cell } from '../counter-cells.js'
import { levelEnabled } from '../lazy-logger.js'
import { resourceOf, type Metrics } from '../metrics.js'
import type { SplitUrl } from '../safety.js'
import type { ProxyState } from '../state.js'

export function registerRequestLog(answers: Answers, o: { metrics: Metrics; clientAuth: ClientAuth; state: ProxyState }): void {
  const { metrics, clientAuth, state } = o
  const requestCounters = new Map<string, Cell>()
  const resourceCounters = new Map<string, Map<string, Cell>>()
  const resources = new WeakMap<SplitUrl, string>()
  answers.on((a) => {
    const label = `${a.method} ${a.status}`
    let counter = requestCounters.get(label)
    if (!counter) requestCounters.set(label, (counter = cellOf(metrics.requests, { method: a.method, status: String(a.status) })))
    counter.inc()
    if (clientAuth.enabled && a.clientName) metrics.clientRequests.labels(a.clientName).inc()
    if (a.api) {
      const result = a.cacheResult?.toLowerCase() ?? (a.method === 'GET' || a.method === 'HEAD' ? 'none' : 'write')
      let resource = resources.get(a.api)
      if (!resource) resources.set(a.api, (resource = resourceOf(a.api.rawPath)))
      let byResource = resourceCounters.get(result)
      if (!byResource) resourceCounters.set(result, (byResource = new Map<string, Cell>()))
      let c = byResource.get(resource)
      if (!c) byResource.set(resource, (c = cellOf(metrics.resourceRequests, { resource, result })))
      c.inc()
    }
    state.requests++
    if (!levelEnabled(a.log, 'info')) return
    const q = a.url.indexOf('?')
    a.log.info(
      {
        method: a.method,
        path: q < 0 ? a.url : a.url.slice(0, q),
        status: a.status,
        ms: Math.round(a.elapsedMs * 10) / 10,
        cache: a.cacheResult,
        client: a.clientName || undefined,
      },
      'request',
    )
  })
}
