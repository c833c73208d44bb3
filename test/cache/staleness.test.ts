import { afterEach, describe, expect, it } from 'vitest'
import { startStack, until, type Stack } from '../helpers.js'

describe('stale-while-revalidate and stale-if-error', () => {
  let s: Stack | undefined
  const clock = { t: Date.now() }
  afterEach(async () => {
    await s?.close()
    s = undefined
  })
  const start = (env: Record<string, string> = {}) => startStack({ env: { CACHE_TTL_SECONDS: '10', CACHE_STALE_SECONDS: '60', ...env }, now: () => clock.t })
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${s!.url}/api/v3${path}`, { headers })

  it('after the TTL answers STALE at once and starts exactly one background refresh', async () => {
    s = await start()
    await get('/jobs/31')
    clock.t += 11_000
    s.sim.inject({ kind: 'delay', path: '/jobs/31', ms: 300 })
    // the data changes upstream meanwhile
    s.sim.data.jobs.find((j) => j.id === 31)!.name = 'changed'
    const t0 = Date.now()
    const first = await get('/jobs/31')
    const second = await get('/jobs/31')
    expect(Date.now() - t0).toBeLessThan(250) // not waiting for the 300 ms refresh
    expect(first.headers.get('x-cache')).toBe('STALE')
    expect(second.headers.get('x-cache')).toBe('STALE')
    expect(first.headers.get('cache-status')).toMatch(/^jobprogress-proxy; hit; ttl=-\d+; fwd=stale$/)
    expect(Number(first.headers.get('age'))).toBeGreaterThanOrEqual(11)
    await until(() => s!.app.cache.inflight === 0)
    expect(s.sim.count('/jobs/31')).toBe(2)
    const fresh = await get('/jobs/31')
    expect(fresh.headers.get('x-cache')).toBe('HIT')
    expect(((await fresh.json()) as { data: { name: string } }).data.name).toBe('changed')
  })

  it('past the stale window it is a normal miss', async () => {
    s = await start()
    await get('/jobs/32')
    clock.t += 71_000
    const r = await get('/jobs/32')
    expect(r.headers.get('x-cache')).toBe('MISS')
    expect(s.sim.count('/jobs/32')).toBe(2)
  })

  it('a failed background refresh keeps the stale entry', async () => {
    s = await start()
    await get('/jobs/33')
    clock.t += 11_000
    s.sim.inject({ kind: 'reset', path: '/jobs/33' })
    expect((await get('/jobs/33')).headers.get('x-cache')).toBe('STALE')
    await until(() => s!.app.cache.inflight === 0)
    const again = await get('/jobs/33')
    expect(again.status).toBe(200)
    expect(again.headers.get('x-cache')).toMatch(/STALE/)
  })

  for (const [what, fault] of [
    ['a reset', { kind: 'reset' }],
    ['a timeout', { kind: 'hang', ms: 1500 }],
    ['a 503', { kind: 'status', status: 503 }],
    ['an HTML 502 page', { kind: 'html', status: 502 }],
  ] as const) {
    it(`serves the stale entry instead of ${what} when a refetch is forced`, async () => {
      s = await start({ UPSTREAM_TIMEOUT_MS: '300' })
      const original = await (await get('/jobs/34')).text()
      clock.t += 11_000
      s.sim.inject({ ...fault, path: '/jobs/34' })
      const r = await get('/jobs/34', { 'cache-control': 'no-cache' })
      expect(r.status).toBe(200)
      expect(r.headers.get('x-cache')).toBe('STALE')
      expect(r.headers.get('cache-status')).toMatch(/detail=stale-if-error/)
      expect(await r.text()).toBe(original)
    })
  }

  it('without a stale entry the error reaches the client', async () => {
    s = await start()
    s.sim.inject({ kind: 'status', status: 503, path: '/jobs/35' })
    expect((await get('/jobs/35')).status).toBe(503)
  })
})
