// Browsers are not clients of this proxy. Two browser attacks would otherwise spend the token:
// - DNS rebinding: a page on rebind.evil.example resolves its own name to 127.0.0.1 and reads the
//   answers (same origin, as far as the browser knows). Refused by the Host allow-list: 421
//   HOST_NOT_ALLOWED.
// - Cross-site requests (CSRF): a page elsewhere posts a form (or fetches with mode no-cors) to
//   http://127.0.0.1:8080/api/v3/...; no preflight is needed for that. Refused when the browser says
//   so (Sec-Fetch-Site: cross-site) or its Origin is not an allowed host: 403 CROSS_SITE_REFUSED.
// CORS preflights are refused the same way (never forwarded, never answered positively), and
// upstream Access-Control-* headers never reach a client (src/upstream/headers.ts).
// It runs first, on every route but the probes (/healthz, /readyz, /metrics: figures only, and an
// orchestrator calls them with whatever Host it likes), so nothing of a refused request is read,
// cached or sent upstream.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Config } from '../config.js'
import { CrossSiteRefused, HostNotAllowed } from '../errors.js'

/** Routes every caller may use whatever its Host or Origin. */
export const OPEN_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics'])
/** The dashboard page holds no data: a link to it from another site may open it. */
const DASHBOARD_PAGES: ReadonlySet<string> = new Set(['/_proxy/', '/_proxy'])

/** The name part of a Host header (or URL host), lower-cased: no port, no trailing dot; IPv6 in brackets. */
export function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    return end < 0 ? h : h.slice(0, end + 1)
  }
  if (h.indexOf(':') !== h.lastIndexOf(':')) return `[${h}]` // a bare IPv6 address (HOST=::1)
  const colon = h.indexOf(':')
  return (colon < 0 ? h : h.slice(0, colon)).replace(/\.$/, '')
}

/** localhost, *.localhost (browsers resolve it themselves, never through DNS), 127.0.0.0/8, ::1. */
export function isLoopbackName(hostname: string): boolean {
  const h = hostnameOf(hostname)
  return h === 'localhost' || h.endsWith('.localhost') || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^\[::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}\]$/.test(h)
}

export class HostPolicy {
  readonly #names = new Set<string>()
  readonly #suffixes: string[] = []
  /** non-loopback HOST and no ALLOWED_HOSTS: any Host (SPEC) */
  readonly anyHost: boolean
  readonly #known = new Map<string, boolean>()
  readonly #knownOrigins = new Map<string, Map<string, boolean>>()

  constructor(config: Pick<Config, 'host' | 'allowedHosts' | 'publicUrl'>) {
    const host = hostnameOf(config.host)
    this.#names.add(host)
    if (config.publicUrl) this.#names.add(hostnameOf(new URL(config.publicUrl).host))
    for (const h of config.allowedHosts) {
      if (h.startsWith('*.')) this.#suffixes.push(h.slice(1))
      else this.#names.add(hostnameOf(h))
    }
    this.anyHost = !isLoopbackName(host) && config.allowedHosts.length === 0
  }

  /** A name accepted in its own right: loopback, HOST, PUBLIC_URL's host, ALLOWED_HOSTS. */
  named(hostname: string): boolean {
    return this.#names.has(hostname) || isLoopbackName(hostname) || this.#suffixes.some((s) => hostname.endsWith(s))
  }

  /** Whether a request's Host header may be answered (remembered: the hit path parses it once). */
  hostAllowed(hostHeader: string): boolean {
    if (this.anyHost) return true
    let ok = this.#known.get(hostHeader)
    if (ok === undefined) {
      ok = this.named(hostnameOf(hostHeader))
      if (this.#known.size >= 256) this.#known.clear()
      this.#known.set(hostHeader, ok)
    }
    return ok
  }

  /** An Origin is allowed when it is the request's own host, or a name accepted in its own right. */
  originAllowed(origin: string, hostHeader: string | undefined): boolean {
    let byHost = this.#knownOrigins.get(origin)
    let ok = byHost?.get(hostHeader ?? '')
    if (ok === undefined) {
      ok = this.#originAllowed(origin, hostHeader)
      if (!byHost) {
        if (this.#knownOrigins.size >= 256) this.#knownOrigins.clear()
        this.#knownOrigins.set(origin, (byHost = new Map<string, boolean>()))
      }
      if (byHost.size >= 64) byHost.clear()
      byHost.set(hostHeader ?? '', ok)
    }
    return ok
  }

  #originAllowed(origin: string, hostHeader: string | undefined): boolean {
    if (origin === 'null') return false // sandboxed frames, file: and data: pages
    let originHost: string
    try {
      originHost = hostnameOf(new URL(origin).host)
    } catch {
      return false
    }
    if (!originHost) return false
    if (hostHeader !== undefined && originHost === hostnameOf(hostHeader)) return true
    return this.named(originHost)
  }
}

/** the path of a request target, without its query (no allocation when there is none) */
function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)

/** What the guard reads of a request: Fastify's request, or Node's (the hit path in front of the router). */
export interface GuardedRequest {
  readonly method?: string
  readonly url?: string
  readonly headers: IncomingHttpHeaders
}

/** Throws HOST_NOT_ALLOWED or CROSS_SITE_REFUSED for a request this proxy must not serve. */
export function checkBrowserRequest(policy: HostPolicy, request: GuardedRequest): void {
  const headers = request.headers
  const host = headers.host
  if (host !== undefined && !policy.hostAllowed(host)) {
    throw new HostNotAllowed(`This proxy does not answer for the Host ${JSON.stringify(host.slice(0, 100))} (DNS rebinding protection): list it in ALLOWED_HOSTS`)
  }
  if (request.method === 'OPTIONS' && headers['access-control-request-method'] !== undefined) {
    throw new CrossSiteRefused('CORS preflight requests are refused: the proxy does not serve pages of other origins')
  }
  const site = first(headers['sec-fetch-site'])
  const origin = first(headers.origin)
  if (site !== 'cross-site' && (origin === undefined || policy.originAllowed(origin, host))) return
  // a link to the dashboard page from elsewhere may open it (it holds no data; its own calls are same-origin)
  if (request.method === 'GET' && headers['sec-fetch-mode'] === 'navigate' && DASHBOARD_PAGES.has(pathOf(request.url ?? ''))) return
  throw new CrossSiteRefused(
    site === 'cross-site'
      ? 'Requests from pages of another site are refused (Sec-Fetch-Site: cross-site)'
      : `Requests from pages of the origin ${JSON.stringify(origin!.slice(0, 100))} are refused: its host is not an allowed host`,
  )
}

/** Registers the guard on every route but OPEN_ROUTES. Call before the routes are registered. */
export function registerBrowserGuard(app: FastifyInstance, config: Readonly<Config>): HostPolicy {
  const policy = new HostPolicy(config)
  app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    if (OPEN_ROUTES.has(pathOf(request.url))) return done()
    try {
      checkBrowserRequest(policy, request)
    } catch (err) {
      return done(err as Error)
    }
    done()
  })
  return policy
}
