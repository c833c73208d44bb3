import { afterEach, describe, expect, it } from 'vitest'
import { routeOf, type ClientStatus } from '../../src/clients.js'
import { startStack, until, type Stack } from '../helpers.js'

interface Usage {
  span_minutes: number
  top_clients: Array<{ client: string; upstream_calls: number }>
  top_routes: Array<{ route: string; upstream_calls: number }>
  clients: Record<string, ClientStatus>
}

const KEYS = { PROXY_API_KEYS: 'office:k-office-1,billing:k-billing-2,batch:k-batch-3' }

describe('who spends the budget: per-client upstream calls', () => {
  let s: Stack | undefined
  const clock = { t: Date.now() }
  afterEach(async () => {
    await s?.close()
    s = undefined
  })
  const as = (key: string, path: string, init: RequestInit = {}) => fetch(`${s!.url}/api/v3${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), 'x-proxy-key': key } })
  const status = async () => ((await (await fetch(`${s!.url}/_proxy/status`)).json()) as { clients: Record<string, ClientStatus> }).clients
  const metric = async (client: string) => {
    const text = await (await fetch(`${s!.url}/metrics`)).text()
    const m = new RegExp(`^jobprogress_proxy_client_upstream_calls_total\\{client="${client}"\\} (\\d+)$`, 'm').exec(text)
    return m ? Number(m[1]) : undefined
  }

  it('counts misses and writes for the client that caused them, hits cost nothing; refreshes count for the client that started them', async () => {
    s = await startStack({ env: { ...KEYS, CACHE_TTL_SECONDS: '10' }, now: () => clock.t })
    // office: 3 misses, 3 hits
    for (const id of [1, 2, 3]) expect((await as('k-office-1', `/jobs/${id}`)).status).toBe(200)
    for (const id of [1, 2, 3]) expect((await as('k-office-1', `/jobs/${id}`)).headers.get('x-cache')).toBe('HIT')
    // billing: hits on office's entries (no calls), one write
    expect((await as('k-billing-2', '/jobs/1')).headers.get('x-cache')).toBe('HIT')
    const w = await as('k-billing-2', '/jobs/2', { method: 'PUT', body: JSON.stringify({ name: 'x' }), headers: { 'content-type': 'application/json' } })
    expect(w.status).toBe(200)
    // the entry of /jobs/3 goes stale: batch's request starts the background refresh
    clock.t += 11_000
    expect((await as('k-batch-3', '/jobs/3')).headers.get('x-cache')).toBe('STALE')
    await until(() => s!.app.cache.inflight === 0)
    expect(s.sim.calls).toHaveLength(5)

    const c = await status()
    expect(Object.keys(c).sort()).toEqual(['batch', 'billing', 'office'])
    expect(c.office).toMatchObject({ requests: 6, hits: 3, stale: 0, upstream_calls: 3, rejected_503: 0, share_percent: null, window_cap: null })
    expect(c.billing).toMatchObject({ requests: 2, hits: 1, upstream_calls: 1 })
    expect(c.batch).toMatchObject({ requests: 1, hits: 0, stale: 1, upstream_calls: 1 })
    expect(await metric('office')).toBe(3)
    expect(await metric('billing')).toBe(1)
    expect(await metric('batch')).toBe(1)
    // no series for an address or an unknown name
    expect(await (await fetch(`${s.url}/metrics`)).text()).not.toMatch(/client_upstream_calls_total\{client="(127|anonymous)/)

    const u = (await (await fetch(`${s.url}/_proxy/usage`)).json()) as Usage
    expect(u.span_minutes).toBe(15)
    expect(u.top_clients).toEqual([
      { client: 'office', upstream_calls: 3 },
      { client: 'batch', upstream_calls: 1 },
      { client: 'billing', upstream_calls: 1 },
    ])
    expect(u.top_routes).toEqual([{ route: '/jobs/{id}', upstream_calls: 5 }])
  })

  it('a coalesced miss counts once, for the client whose request started the call', async () => {
    s = await startStack({ env: KEYS })
    s.sim.inject({ kind: 'delay', path: '/jobs/7', ms: 200 })
    const first = as('k-office-1', '/jobs/7')
    await until(() => s!.sim.count('/jobs/7') === 1)
    const joined = await Promise.all([as('k-billing-2', '/jobs/7'), as('k-batch-3', '/jobs/7')])
    expect([(await first).status, ...joined.map((r) => r.status)]).toEqual([200, 200, 200])
    expect(s.sim.count('/jobs/7')).toBe(1)
    const c = await status()
    expect([c.office!.upstream_calls, c.billing!.upstream_calls, c.batch!.upstream_calls]).toEqual([1, 0, 0])
  })

  it('without keys every call is "anonymous"; queue waits and 503s are counted', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '2', UPSTREAM_RATE_WINDOW_MS: '1000', QUEUE_TIMEOUT_MS: '1500' }, sim: { rateLimit: 2, rateWindowMs: 1000 } })
    // 2 go at once, 2 wait about a window, 2 would wait two windows: past QUEUE_TIMEOUT_MS
    const answers = await Promise.all([1, 2, 3, 4, 5, 6].map((id) => fetch(`${s!.url}/api/v3/jobs/${id}`)))
    expect(answers.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 503, 503])
    const c = await status()
    expect(Object.keys(c)).toEqual(['anonymous'])
    expect(c.anonymous).toMatchObject({ requests: 6, upstream_calls: 4, queue_waits: 2, rejected_503: 2 })
    expect(c.anonymous!.queue_wait_ms).toBeGreaterThan(1500) // two calls of about 900 ms or more each
    expect(await metric('anonymous')).toBe(4)
  })

  it('routes are templates without data', () => {
    expect(routeOf('/jobs/11/notes')).toBe('/jobs/{id}/notes')
    expect(routeOf('/customers/Jane%20Doe')).toBe('/customers/{id}')
    expect(routeOf('/workflow/stages')).toBe('/workflow/stages')
    expect(routeOf('/')).toBe('/')
  })
})
