import { afterEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers.js'

/** name -> { dur, desc } of a Server-Timing header */
function parse(header: string | null): Record<string, { dur?: number; desc?: string }> {
  const out: Record<string, { dur?: number; desc?: string }> = {}
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.trim().split(';')
    const m: { dur?: number; desc?: string } = {}
    for (const p of params) {
      const [k, v] = p.split('=')
      if (k === 'dur') m.dur = Number(v)
      if (k === 'desc') m.desc = v
    }
    if (name) out[name] = m
  }
  return out
}

describe('Server-Timing on every answer', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('a miss shows the cache result, the budget wait and the upstream time; a hit only the cache', async () => {
    s = await startStack({})
    s.sim.inject({ kind: 'delay', path: '/jobs/1', ms: 120 })
    const miss = parse((await fetch(`${s.url}/api/v3/jobs/1`)).headers.get('server-timing'))
    expect(miss.cache).toEqual({ desc: 'MISS' })
    expect(miss.budget!.dur).toBeGreaterThanOrEqual(0)
    expect(miss.budget!.dur).toBeLessThan(100)
    expect(miss.upstream!.dur).toBeGreaterThanOrEqual(115)
    expect(miss.total!.dur).toBeGreaterThanOrEqual(miss.upstream!.dur!)
    const hit = parse((await fetch(`${s.url}/api/v3/jobs/1`)).headers.get('server-timing'))
    expect(hit.cache).toEqual({ desc: 'HIT' })
    expect(hit.budget).toBeUndefined()
    expect(hit.upstream).toBeUndefined()
    const bypass = parse((await fetch(`${s.url}/api/v3/jobs/1`, { headers: { 'cache-control': 'no-store' } })).headers.get('server-timing'))
    expect(bypass.cache).toEqual({ desc: 'BYPASS' })
    expect(bypass.upstream!.dur).toBeGreaterThan(0)
  })

  it('budget;dur is the time waited for a slot', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '1', UPSTREAM_RATE_WINDOW_MS: '600' }, sim: { rateLimit: 1, rateWindowMs: 600 } })
    const [a, b] = await Promise.all([fetch(`${s.url}/api/v3/jobs/2`), fetch(`${s.url}/api/v3/jobs/3`)])
    const waits = [a, b].map((r) => parse(r.headers.get('server-timing')).budget!.dur!).sort((x, y) => x - y)
    expect(waits[0]).toBeLessThan(300)
    expect(waits[1]).toBeGreaterThanOrEqual(500) // one window later
  })

  it('a 503 QUEUE_TIMEOUT shows how long it waited for the budget', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '1', UPSTREAM_RATE_WINDOW_MS: '5000', QUEUE_TIMEOUT_MS: '300' }, sim: { rateLimit: 1, rateWindowMs: 5000 } })
    expect((await fetch(`${s.url}/api/v3/jobs/6`)).status).toBe(200)
    const r = await fetch(`${s.url}/api/v3/jobs/7`)
    expect(r.status).toBe(503)
    const t = parse(r.headers.get('server-timing'))
    expect(t.budget!.dur).toBeGreaterThanOrEqual(290)
    expect(t.upstream).toBeUndefined() // never sent
  })

  it('waiters that joined a fill see its budget wait and upstream time', async () => {
    s = await startStack({})
    s.sim.inject({ kind: 'delay', path: '/jobs/4', ms: 150 })
    const answers = await Promise.all([1, 2, 3].map(() => fetch(`${s!.url}/api/v3/jobs/4`)))
    expect(s.sim.count('/jobs/4')).toBe(1)
    for (const r of answers) expect(parse(r.headers.get('server-timing')).upstream!.dur).toBeGreaterThanOrEqual(145)
  })

  it('writes, proxy errors and the ops routes carry it too', async () => {
    s = await startStack({ env: { PROXY_API_KEYS: 'office:k1' } })
    const put = await fetch(`${s.url}/api/v3/jobs/5`, { method: 'PUT', headers: { 'x-proxy-key': 'k1', 'content-type': 'application/json' }, body: '{"name":"n"}' })
    expect(put.status).toBe(200)
    const w = parse(put.headers.get('server-timing'))
    expect(w.cache).toBeUndefined()
    expect(w.upstream!.dur).toBeGreaterThan(0)
    expect(w.budget).toBeDefined()
    const refused = await fetch(`${s.url}/api/v3/jobs/5`)
    expect(refused.status).toBe(401)
    expect(Object.keys(parse(refused.headers.get('server-timing')))).toEqual(['total'])
    for (const path of ['/healthz', '/_proxy/status', '/nowhere']) {
      expect(parse((await fetch(`${s.url}${path}`)).headers.get('server-timing')).total!.dur).toBeGreaterThanOrEqual(0)
    }
  })
})
