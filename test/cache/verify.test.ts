// Verification: projection is served on a route only once real pairs agree, and a difference turns it off.
import { afterEach, describe, expect, it } from 'vitest'
import { parseCacheRules } from '../../src/cache/rules.js'
import { startStack, type Stack } from '../helpers.js'
import { expectTruth, get, status } from './resource-fixtures.js'

describe('verification of projections against real answers', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('a narrower real answer that differs from the projection turns projection off for the route: warning, metric, status', async () => {
    s = await startStack()
    s.sim.quirks.includesChangeBase = true // includes also change "description": a projection would be wrong
    await get(s, '/jobs/1?includes[]=customer')
    await get(s, '/jobs/1') // the real narrower answer: the pair is compared
    const st = await status(s)
    expect(st.cache.resource.disabled).toEqual([expect.objectContaining({ lever: 'projection', route: '/jobs/{id}' })])
    expect(st.cache.resource.verified['/jobs/{id}']).toEqual({ checked: 1, matched: 0 })
    expect(s.logs.some((l) => /"level":40/.test(l) && l.includes('projection turned off for /jobs/{id}'))).toBe(true)
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toContain('jobprogress_proxy_cache_lever_disabled_total{lever="projection",route="/jobs/{id}"} 1')
    // from now on every variant is a real call, and right
    for (let id = 2; id <= 4; id++) {
      await get(s, `/jobs/${id}?includes[]=customer&includes[]=address`)
      for (const path of [`/jobs/${id}?includes[]=customer`, `/jobs/${id}`]) {
        const got = await get(s, path)
        expect(got.cache, path).toBe('MISS')
        await expectTruth(s, path, got)
      }
    }
    // other routes are unaffected
    expect((await status(s)).cache.resource.disabled).toHaveLength(1)
  })

  it('projections already stored on the route are dropped when it is turned off', async () => {
    s = await startStack({ env: { CACHE_RULES: '/**!widening' } })
    for (const id of [1, 2]) {
      await get(s, `/jobs/${id}`)
      await get(s, `/jobs/${id}?includes[]=customer`)
    }
    await get(s, '/jobs/3?includes[]=customer&includes[]=address')
    expect((await get(s, '/jobs/3?includes[]=address')).cacheStatus).toContain('projection')
    // the upstream changes its behaviour: the next pair shows it
    s.sim.quirks.includesChangeBase = true
    await get(s, '/jobs/4?includes[]=customer')
    await get(s, '/jobs/4', { 'cache-control': 'no-cache' }) // a real narrower answer (else it would be a projection)
    expect((await status(s)).cache.resource.disabled.map((d) => d.lever)).toEqual(['projection'])
    const again = await get(s, '/jobs/3?includes[]=address')
    expect(again.cache).toBe('MISS')
    await expectTruth(s, '/jobs/3?includes[]=address', again)
  })

  it('CACHE_RULES turns a lever off per route: no projection there even after matching pairs', async () => {
    s = await startStack({ env: { CACHE_RULES: '/jobs/*!projection' } })
    for (const id of [1, 2, 3]) {
      await get(s, `/jobs/${id}`)
      await get(s, `/jobs/${id}?includes[]=customer`)
    }
    await get(s, '/jobs/4?includes[]=customer&includes[]=address')
    expect((await get(s, '/jobs/4?includes[]=address')).cache).toBe('MISS')
    expect(s.sim.calls.filter((c) => c.path === '/jobs/4').map((c) => c.url)).toEqual(['/api/v3/jobs/4?includes[]=customer&includes[]=address', '/api/v3/jobs/4?includes[]=address'])
    // another route still projects
    for (const id of [1, 2]) {
      await get(s, `/customers/${id}`)
      await get(s, `/customers/${id}?includes[]=phones`)
    }
    await get(s, '/customers/3?includes[]=phones&includes[]=rep')
    expect((await get(s, '/customers/3?includes[]=rep')).cache).toBe('HIT')
  })

  it('the rules syntax: <path>!<lever>, all, and a clear error for an unknown lever', () => {
    const r = parseCacheRules('/jobs/*!widening, /customers/**!all')
    expect(r.off?.map((o) => `${o.pattern}!${o.lever}`)).toEqual(['/jobs/*!widening', '/customers/**!projection', '/customers/**!covering', '/customers/**!widening', '/customers/**!write-refresh'])
    expect(() => parseCacheRules('/jobs/*!sometimes')).toThrow(/projection, covering, widening, write-refresh or all/)
  })
})
