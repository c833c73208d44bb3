import { afterEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers.js'

describe('what is stored', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${s!.url}/api/v3${path}`, { headers })

  it('stores 200s only: a 404 or 412 is asked again', async () => {
    s = await startStack()
    expect((await get('/jobs/9999')).status).toBe(404)
    expect((await get('/jobs/9999')).headers.get('x-cache')).toBe('MISS')
    expect(s.sim.count('/jobs/9999')).toBe(2)
    expect((await get('/jobs/9999/notes')).status).toBe(412)
    await get('/jobs/9999/notes')
    expect(s.sim.count('/jobs/9999/notes')).toBe(2)
  })

  it('never stores a truncated body, and answers 502 for it', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'truncate', path: '/divisions' })
    const bad = await get('/divisions')
    expect(bad.status).toBe(502)
    expect(await bad.json()).toMatchObject({ error: { code: 'UPSTREAM_UNREACHABLE' } })
    const good = await get('/divisions')
    expect(good.status).toBe(200)
    expect(good.headers.get('x-cache')).toBe('MISS')
    expect((await get('/divisions')).headers.get('x-cache')).toBe('HIT')
  })

  it('never stores or replays Set-Cookie', async () => {
    s = await startStack()
    const miss = await get('/company/trades')
    const hit = await get('/company/trades')
    expect(hit.headers.get('x-cache')).toBe('HIT')
    expect(miss.headers.get('set-cookie')).toBeNull()
    expect(hit.headers.get('set-cookie')).toBeNull()
  })

  it('keeps the total under CACHE_MAX_BYTES, and passes answers over 1/8 of it without storing', async () => {
    s = await startStack({ env: { CACHE_MAX_BYTES: '20000', UPSTREAM_RATE_LIMIT: '1000' }, sim: { rateLimit: 1000 } })
    // /jobs?limit=10 is about 5 KB: over 20000/8, so never stored
    const big1 = await get('/jobs?limit=10')
    expect(big1.status).toBe(200)
    expect((await get('/jobs?limit=10')).headers.get('x-cache')).toBe('MISS')
    expect(s.sim.count('/jobs')).toBe(2)
    for (let id = 1; id <= 60; id++) await get(`/jobs/${id}`)
    const status = (await (await fetch(`${s.url}/_proxy/status`)).json()) as { cache: { bytes: number; entries: number; max_bytes: number } }
    expect(status.cache.max_bytes).toBe(20000)
    expect(status.cache.bytes).toBeLessThanOrEqual(20000)
    expect(status.cache.entries).toBeGreaterThan(5)
    expect(status.cache.entries).toBeLessThan(60)
    // the most recent ones are still there, the oldest went
    expect((await get('/jobs/60')).headers.get('x-cache')).toBe('HIT')
    expect((await get('/jobs/1')).headers.get('x-cache')).toBe('MISS')
  })

  it('CACHE_RULES: a per-path TTL, and 0 for never', async () => {
    const clock = { t: Date.now() }
    s = await startStack({ env: { CACHE_TTL_SECONDS: '10', CACHE_RULES: '/workflow/stages=3600, /jobs/*/financial_summary=0' }, now: () => clock.t })
    await get('/workflow/stages')
    await get('/divisions')
    clock.t += 60_000
    const stages = await get('/workflow/stages')
    expect(stages.headers.get('x-cache')).toBe('HIT')
    expect((await get('/divisions')).headers.get('x-cache')).toBe('STALE')
    const fin1 = await get('/jobs/3/financial_summary')
    const fin2 = await get('/jobs/3/financial_summary')
    expect(fin1.headers.get('x-cache')).toBe('BYPASS')
    expect(fin2.headers.get('x-cache')).toBe('BYPASS')
    expect(s.sim.count('/jobs/3/financial_summary')).toBe(2)
  })
})
