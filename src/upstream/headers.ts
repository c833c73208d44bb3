// Which headers cross the proxy, in each direction. One place, used by every path.

export type HeaderMap = Record<string, string | string[] | number | undefined>

// RFC 9110 7.6.1 hop-by-hop headers, plus the ones HTTP/1.1 proxies conventionally drop.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/** Client headers that never go upstream: credentials of the client, and what undici sets itself. */
const NOT_FORWARDED = new Set(['host', 'authorization', 'x-proxy-key', 'cookie', 'content-length', 'expect'])

/** Upstream headers that never reach a client: the session cookie and the upstream's budget. */
const NOT_RETURNED = new Set(['set-cookie', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after'])

function connectionListed(headers: HeaderMap): Set<string> {
  const c = headers.connection
  const v = Array.isArray(c) ? c.join(',') : typeof c === 'string' ? c : ''
  return new Set(
    v
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  )
}

export function upstreamRequestHeaders(client: HeaderMap): Record<string, string> {
  const listed = connectionListed(client)
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(client)) {
    const n = name.toLowerCase()
    if (value === undefined || HOP_BY_HOP.has(n) || NOT_FORWARDED.has(n) || listed.has(n)) continue
    out[n] = Array.isArray(value) ? value.join(', ') : String(value)
  }
  return out
}

export function clientResponseHeaders(upstream: HeaderMap): Record<string, string | string[]> {
  const listed = connectionListed(upstream)
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(upstream)) {
    const n = name.toLowerCase()
    if (value === undefined || HOP_BY_HOP.has(n) || NOT_RETURNED.has(n) || listed.has(n)) continue
    if (n.startsWith('access-control-')) continue // no CORS grant of JobProgress's reaches a browser through us
    out[n] = Array.isArray(value) ? value : String(value)
  }
  return out
}
