// Cache hits are answered in front of Fastify's router (src/routes/fast-hits.ts). The same requests
// through a proxy without that path must get the same bytes: status, headers in order, body, counters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { FastifyRequest } from 'fastify'
import { gunzipSync } from 'node:zlib'
import { rawGet, startStack, type RawResponse, type Stack } from '../helpers.js'

const T0 = Date.UTC(2026, 0, 5, 12)

/** The ports whose requests reached a Fastify route handler (Fastify's diagnostics channel). */
const routedPorts: number[] = []
const onHandler = (msg: unknown) => routedPorts.push((msg as { request: FastifyRequest }).request.socket.localPort ?? 0)

/**
 * One raw GET; the response's header lines in order (Date and Server-Timing's duration masked). The
 * simulator's and the proxy's ports (each stack has its own) are masked in the body and ETag of a list
 * page, whose pagination links name them.
 */
async function raw(s: Stack, target: string, headers: Record<string, string> = {}): Promise<RawResponse & { lines: string[] }> {
  const r = await rawGet(s.port, target, { host: `127.0.0.1:${s.port}`, ...headers })
  const lines = r.raw
    .split('\r\n\r\n', 1)[0]!
    .split('\r\n')
    .map((l) => l.replace(/^Date: .*/, 'Date: -').replace(/dur=[\d.]+/g, 'dur=-'))
  const bytes = Buffer.from(r.body, 'latin1')
  const text = r.headers['content-encoding'] === 'gzip' && bytes.length ? gunzipSync(bytes).toString('latin1') : r.body
  if (!text.includes('"links"')) return { ...r, lines }
  expect(Number(r.headers['content-length'])).toBe(bytes.length)
  return { ...r, body: text.replace(/127\.0\.0\.1:\d+/g, 'HOST'), lines: lines.map((l) => l.replace(/^(etag|content-length): .*/, '$1: -')) }
}

/** The counters a hit adds to, from /metrics (process figures left out). */
async function counters(s: Stack): Promise<string[]> {
  const text = await (await fetch(`${s.url}/metrics`)).text()
  return text.split('\n').filter((l) => /^jobprogress_proxy_(requests_total|cache_requests_total|resource_requests_total|client_requests_total)\{/.test(l) && !l.includes('/metrics'))
}

describe('cache hits in front of the router answer as the route does', () => {
  const env = { PROXY_API_KEYS: 'alice:key-alice-123456,bob:key-bob-1234567' }
  let fast: Stack
  let routed: Stack
  const now = () => T0
  beforeAll(async () => {
    fast = await startStack({ env, now })
    routed = await startStack({ env, now, app: { fastHits: false } })
    subscribe('tracing:fastify.request.handler:start', onHandler)
  })
  afterAll(async () => {
    unsubscribe('tracing:fastify.request.handler:start', onHandler)
    await fast.close()
    await routed.close()
  })

  const cases: Array<[string, Record<string, string>]> = [
    ['/api/v3/jobs/7?includes[]=customer&includes[]=address', { 'x-proxy-key': 'key-alice-123456' }],
    ['/api/v3/jobs/7?includes[]=address&includes[]=customer', { 'x-proxy-key': 'key-bob-1234567', 'accept-encoding': 'gzip, br' }],
    ['/api/v3/jobs?limit=60&page=1&includes[]=customer', { authorization: 'Bearer key-alice-123456' }],
    ['/api/v3/jobs?limit=60&page=1&includes[]=customer', { 'x-proxy-key': 'key-alice-123456', 'accept-encoding': 'gzip' }],
    ['/api/v3/customers/3', { 'x-proxy-key': 'key-alice-123456', 'cache-control': 'max-stale=60' }],
    ['/api/v3/jobs/7', { 'x-proxy-key': 'key-alice-123456' }], // a projection of the wider entry
  ]

  it('status, header lines in order and body bytes are the same, and the hit path took them', async () => {
    for (const [target, headers] of cases) {
      await raw(fast, target, headers) // fill (a miss goes through Fastify in both)
      await raw(routed, target, headers)
      routedPorts.length = 0
      const a = await raw(fast, target, headers)
      const b = await raw(routed, target, headers)
      expect(a.headers['x-cache'], target).toBe('HIT')
      expect(routedPorts, target).toEqual([routed.port]) // the hit path answered the first; Fastify's route the second
      expect(a.lines, target).toEqual(b.lines)
      expect(a.body, target).toBe(b.body)
    }
    // a list page's pagination links point at the proxy (the client's Host)
    for (const stack of [fast, routed]) {
      const list = await rawGet(stack.port, '/api/v3/jobs?limit=60&page=1&includes[]=customer', { host: `127.0.0.1:${stack.port}`, 'x-proxy-key': 'key-alice-123456' })
      expect(list.headers['x-cache']).toBe('HIT')
      expect(list.body).toContain(`http://127.0.0.1:${stack.port}/api/v3/jobs?`)
    }
    // the same calls upstream
    expect(fast.sim.calls.length).toBe(routed.sim.calls.length)
  })

  it('304 to a matching If-None-Match, for each representation, as the route answers it', async () => {
    const target = '/api/v3/jobs/9'
    const key = { 'x-proxy-key': 'key-alice-123456' }
    await raw(fast, target, key)
    await raw(routed, target, key)
    for (const enc of ['identity', 'gzip']) {
      const etag = (await raw(fast, target, { ...key, 'accept-encoding': enc })).headers.etag!
      expect((await raw(routed, target, { ...key, 'accept-encoding': enc })).headers.etag).toBe(etag)
      const a = await raw(fast, target, { ...key, 'accept-encoding': enc, 'if-none-match': etag })
      const b = await raw(routed, target, { ...key, 'accept-encoding': enc, 'if-none-match': etag })
      expect(a.status).toBe(304)
      expect(a.body).toBe('')
      expect(a.lines).toEqual(b.lines)
    }
  })

  it('a refused request for a cached answer is refused the same way, and nothing goes upstream', async () => {
    const target = '/api/v3/jobs/11'
    const key = { 'x-proxy-key': 'key-alice-123456' }
    await raw(fast, target, key)
    await raw(routed, target, key)
    const calls = fast.sim.calls.length
    const refused: Array<[Record<string, string>, number, string]> = [
      [{}, 401, 'PROXY_KEY_REQUIRED'],
      [{ 'x-proxy-key': 'wrong-key-000000' }, 401, 'PROXY_KEY_INVALID'],
      [{ ...key, host: 'rebind.evil.example' }, 421, 'HOST_NOT_ALLOWED'],
      [{ ...key, 'sec-fetch-site': 'cross-site' }, 403, 'CROSS_SITE_REFUSED'],
      [{ ...key, origin: 'https://evil.example' }, 403, 'CROSS_SITE_REFUSED'],
      [{ ...key, 'content-length': '2' }, 400, 'BAD_REQUEST'],
    ]
    for (const [headers, status, code] of refused) {
      const a = await raw(fast, target, headers)
      const b = await raw(routed, target, headers)
      expect(a.status, code).toBe(status)
      expect(JSON.parse(a.body.replace(/^[^{]*/, '').replace(/[^}]*$/, '')).error.code).toBe(code)
      expect(a.lines).toEqual(b.lines)
    }
    // a target the path check refuses, and a malformed query, go to Fastify too
    for (const bad of ['/api/v3/jobs/%2e%2e/11', '/api/v3/jobs/11?keyword=%zz']) {
      const a = await raw(fast, bad, key)
      expect(a.status, bad).toBe(400)
      expect(a.lines).toEqual((await raw(routed, bad, key)).lines)
    }
    expect(fast.sim.calls.length).toBe(calls)
  })

  it('the same counters and one request log line per hit, with a request id', async () => {
    expect(await counters(fast)).toEqual(await counters(routed))
    const hits = fast.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.cache === 'HIT')
    expect(hits.length).toBeGreaterThan(5)
    for (const l of hits) {
      expect(l.reqId).toMatch(/^req-[0-9a-z]+$/)
      expect(l.path).not.toContain('?')
      expect(l.client).toMatch(/^(alice|bob)$/)
    }
    expect(new Set(hits.map((l) => l.reqId)).size).toBe(hits.length)
    const routedHits = routed.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.cache === 'HIT')
    expect(Object.keys(hits[0]!).sort()).toEqual(Object.keys(routedHits[0]!).sort())
  })
})
