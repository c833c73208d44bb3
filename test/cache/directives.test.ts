import { afterEach, describe, expect, it } from 'vitest'
import { requestDirectives } from '../../src/cache/directives.js'
import { startStack, until, type Stack } from '../helpers.js'

describe('Cache-Control request directives: the one parser', () => {
  it('reads names case-insensitively, values as tokens or quoted strings, and ignores look-alikes', () => {
    expect(requestDirectives('Max-Age=10, ONLY-IF-CACHED')).toMatchObject({ maxAge: 10, onlyIfCached: true, noCache: false })
    expect(requestDirectives('max-age="5"')).toMatchObject({ maxAge: 5 })
    expect(requestDirectives('x-no-cache, foo-no-store, max-age-ish=3')).toEqual({ noCache: false, noStore: false, onlyIfCached: false })
    expect(requestDirectives('max-stale')).toMatchObject({ maxStale: Infinity })
    expect(requestDirectives('max-stale=30, min-fresh=5')).toMatchObject({ maxStale: 30, minFresh: 5 })
    // repeated: the strictest value; an unreadable max-age is read as 0, an unreadable min-fresh ignored
    expect(requestDirectives(['max-age=60', 'max-age=10'])).toMatchObject({ maxAge: 10 })
    expect(requestDirectives('max-age=ten')).toMatchObject({ maxAge: 0 })
    expect(requestDirectives('min-fresh=-1').minFresh).toBeUndefined()
    expect(requestDirectives('foo="a,no-store", no-cache')).toEqual({ noCache: true, noStore: false, onlyIfCached: false })
    expect(requestDirectives(undefined)).toEqual({ noCache: false, noStore: false, onlyIfCached: false })
  })
})

describe('client freshness directives (RFC 9111) through the proxy', () => {
  let s: Stack | undefined
  const clock = { t: Date.now() }
  afterEach(async () => {
    await s?.close()
    s = undefined
  })
  const start = () => startStack({ env: { CACHE_TTL_SECONDS: '30', CACHE_STALE_SECONDS: '60' }, now: () => clock.t })
  const get = (path: string, cc?: string) => fetch(`${s!.url}/api/v3${path}`, { headers: cc ? { 'cache-control': cc } : {} })

  it('max-age=N: an entry at most N s old is a HIT, an older one is refetched and stored', async () => {
    s = await start()
    await get('/jobs/1')
    clock.t += 12_000
    const young = await get('/jobs/1', 'max-age=20')
    expect(young.headers.get('x-cache')).toBe('HIT')
    expect(s.sim.count('/jobs/1')).toBe(1)
    const old = await get('/jobs/1', 'max-age=10')
    expect(old.headers.get('x-cache')).toBe('MISS')
    expect(old.headers.get('cache-status')).toBe('jobprogress-proxy; fwd=request; fwd-status=200; stored')
    expect(s.sim.count('/jobs/1')).toBe(2)
    // the refetched answer replaced the entry: age 0 now
    const after = await get('/jobs/1', 'max-age=10')
    expect(after.headers.get('x-cache')).toBe('HIT')
    expect(after.headers.get('age')).toBe('0')
  })

  it('only-if-cached: a fresh or stale entry is served, nothing cached is 504 NOT_CACHED, and no call goes upstream', async () => {
    s = await start()
    const none = await get('/jobs/2', 'only-if-cached')
    expect(none.status).toBe(504)
    expect(await none.json()).toEqual({ error: { status_code: 504, code: 'NOT_CACHED', message: expect.any(String) } })
    expect(s.sim.count('/jobs/2')).toBe(0)
    await get('/jobs/2')
    expect((await get('/jobs/2', 'only-if-cached')).headers.get('x-cache')).toBe('HIT')
    clock.t += 40_000 // stale now
    const stale = await get('/jobs/2', 'only-if-cached')
    expect(stale.status).toBe(200)
    expect(stale.headers.get('x-cache')).toBe('STALE')
    await new Promise((r) => setTimeout(r, 100))
    expect(s.sim.count('/jobs/2')).toBe(1) // not even a background refresh
    // with a max-age the entry does not meet: 504, still no call
    const tooOld = await get('/jobs/2', 'only-if-cached, max-age=5')
    expect(tooOld.status).toBe(504)
    // a bypassed route, or no-store, cannot be answered from the cache
    expect((await get('/jobs/2', 'only-if-cached, no-store')).status).toBe(504)
    // HEAD as well
    const head = await fetch(`${s.url}/api/v3/jobs/3`, { method: 'HEAD', headers: { 'cache-control': 'only-if-cached' } })
    expect(head.status).toBe(504)
    expect(s.sim.count('/jobs/2')).toBe(1)
    expect(s.sim.count('/jobs/3')).toBe(0)
  })

  it('min-fresh=N: an entry fresh for less than N more seconds is refetched', async () => {
    s = await start()
    await get('/jobs/4')
    clock.t += 20_000 // 10 s of freshness left
    expect((await get('/jobs/4', 'min-fresh=5')).headers.get('x-cache')).toBe('HIT')
    expect((await get('/jobs/4', 'min-fresh=15')).headers.get('x-cache')).toBe('MISS')
    expect(s.sim.count('/jobs/4')).toBe(2)
  })

  it('max-stale=N: a stale entry is served only up to N s past its freshness; without it the default stale-while-revalidate holds', async () => {
    s = await start()
    await get('/jobs/5')
    clock.t += 40_000 // stale for 10 s
    const ok = await get('/jobs/5', 'max-stale=20')
    expect(ok.headers.get('x-cache')).toBe('STALE')
    await until(() => s!.app.cache.inflight === 0)
    expect(s.sim.count('/jobs/5')).toBe(2) // the one background refresh
    clock.t += 40_000 // the refreshed entry is stale for 10 s
    const tooStale = await get('/jobs/5', 'max-stale=5')
    expect(tooStale.headers.get('x-cache')).toBe('MISS')
    expect(s.sim.count('/jobs/5')).toBe(3)
  })

  it('no-cache still refetches; look-alike headers do not', async () => {
    s = await start()
    await get('/jobs/6')
    expect((await get('/jobs/6', 'no-cache')).headers.get('x-cache')).toBe('MISS')
    expect((await get('/jobs/6', 'x-no-cache, private')).headers.get('x-cache')).toBe('HIT')
    expect(s.sim.count('/jobs/6')).toBe(2)
  })
})
