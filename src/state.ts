// What the pieces of one proxy instance share: its lifecycle state and the Fastify decorations.
import type { HttpCache, CacheResult } from './cache/http-cache.js'
import type { Persistence } from './persistence.js'
import type { Distributed } from './redis/distributed.js'
import type { Upstream } from './upstream/client.js'

export interface ProxyState {
  /** false from the start of shutdown: /readyz answers 503 */
  ready: boolean
  /** true once new API calls get 503 SHUTTING_DOWN (after SHUTDOWN_DELAY_MS) */
  closing: boolean
  startedAt: number
  /** client requests answered */
  requests: number
}

export function newProxyState(): ProxyState {
  return { ready: true, closing: false, startedAt: Date.now(), requests: 0 }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the client's name for logs, fairness and metrics: its key's name, or its address */
    clientName: string
    /** how the cache answered (X-Cache), or ABORTED when the client left first; unset for writes */
    cacheResult?: CacheResult | 'ABORTED'
  }
  interface FastifyInstance {
    upstream: Upstream
    cache: HttpCache
    distributed: Distributed | undefined
    /** CACHE_DIR in use; undefined: memory only */
    persistence: Persistence | undefined
    proxyState: ProxyState
  }
}

export interface ClientTimeouts {
  /** all request headers must arrive within this */
  headersMs: number
  /** the whole request, body included, must arrive within this */
  requestMs: number
  /** how often Node checks the two above */
  checkMs: number
}

export const CLIENT_TIMEOUTS: ClientTimeouts = { headersMs: 20_000, requestMs: 120_000, checkMs: 2_000 }

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host)
}
