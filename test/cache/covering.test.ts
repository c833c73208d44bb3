// Covering fills: misses join a fill whose includes cover theirs; a queued fill widens to its waiters'
// union; a waiter whose answer reaches the store leaves the queue at once.
import { afterEach, describe, expect, it } from 'vitest'
import { startStack, until, type Stack } from '../helpers.js'
import { expectTruth, get, proveJobs, status } from './resource-fixtures.js'

describe('covering fills', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('misses whose includes a fill in flight covers join it: one upstream call', async () => {
    s = await startStack({ env: { CACHE_RULES: '/**!widening' } })
    await proveJobs(s)
    s.sim.inject({ kind: 'delay', path: '/jobs/10', ms: 300 })
    const wide = get(s, '/jobs/10?includes[]=customer&includes[]=address')
    await until(() => s!.sim.count('/jobs/10') === 1)
    const narrow = ['/jobs/10?includes[]=address', '/jobs/10', '/jobs/10?includes=customer']
    const got = await Promise.all(narrow.map((p) => get(s!, p)))
    await expectTruth(s, '/jobs/10?includes[]=customer&includes[]=address', await wide)
    for (const [i, p] of narrow.entries()) {
      expect(got[i]!.cache, p).toBe('MISS')
      await expectTruth(s, p, got[i]!)
    }
    expect(s.sim.count('/jobs/10')).toBe(1)
    expect((await status(s)).cache.resource.stats.joined).toBe(3)
  })

  it('a fill still queued for the budget widens to the union of its waiters includes', async () => {
    s = await startStack({ env: { CACHE_RULES: '/**!widening', UPSTREAM_RATE_LIMIT: '5', UPSTREAM_RATE_WINDOW_MS: '1500' } })
    await proveJobs(s) // 4 calls
    await get(s, '/divisions') // the fifth: the budget is spent
    const a = get(s, '/jobs/11?includes[]=address')
    await until(() => s!.app.upstream.throttle.depth === 1)
    const b = get(s, '/jobs/11?includes[]=customer')
    const c = get(s, '/jobs/11')
    const answers = await Promise.all([a, b, c])
    for (const [i, p] of ['/jobs/11?includes[]=address', '/jobs/11?includes[]=customer', '/jobs/11'].entries()) await expectTruth(s, p, answers[i]!)
    const calls = s.sim.calls.filter((x) => x.path === '/jobs/11')
    expect(calls).toHaveLength(1)
    expect(new URL(calls[0]!.url, 'http://x').searchParams.getAll('includes[]').sort()).toEqual(['address', 'customer'])
    const st = (await status(s)).cache.resource.stats
    expect(st.queue_widened).toBe(1)
    expect(st.joined).toBe(1)
  })

  it('a waiter whose answer is stored while its call is queued is answered at once, and its call is dropped', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '2', UPSTREAM_RATE_WINDOW_MS: '2000' } })
    await get(s, '/jobs/8') // a real plain answer of /jobs/{id}: write answers can refresh that route
    s.sim.inject({ kind: 'delay', path: '/jobs/9', ms: 400 })
    await get(s, '/jobs/9') // the budget is spent; its two slots come back 400 ms apart
    const x = get(s, '/jobs/99') // first in line
    await until(() => s!.app.upstream.throttle.depth === 1)
    const started = Date.now()
    const a = get(s, '/jobs/7')
    await until(() => s!.app.upstream.throttle.depth === 2)
    // a write goes before reads: its answer refreshes /jobs/7 while the read still waits
    const w = fetch(`${s.url}/api/v3/jobs/7`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Renamed by the write' }) })
    expect((await w).status).toBe(200)
    const got = await a
    expect(got.cache).toBe('HIT')
    expect(got.cacheStatus).toContain('detail=covered')
    expect((JSON.parse(got.body) as { data: { name: string } }).data.name).toBe('Renamed by the write')
    await expectTruth(s, '/jobs/7', got)
    expect(Date.now() - started).toBeLessThan(3000) // not after the next slot (about 4 s)
    await x
    expect(s.sim.count('/jobs/7', 'GET')).toBe(0)
    expect((await status(s)).cache.resource.stats.released).toBe(1)
  })
})

describe('a wider fill that fails', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('a waiter whose own includes were not the cause asks for them itself', async () => {
    s = await startStack({ env: { CACHE_RULES: '/**!widening' } })
    await proveJobs(s)
    s.sim.inject({ kind: 'hang', path: '/jobs/12', ms: 300 }) // then the 500 below
    s.sim.inject({ kind: 'status', status: 500, path: '/jobs/12' }) // the wider call fails
    const wide = get(s, '/jobs/12?includes[]=customer&includes[]=address')
    await until(() => s!.sim.count('/jobs/12') === 1)
    const narrowing = get(s, '/jobs/12?includes[]=address') // joins the wider call in flight
    await new Promise((r) => setTimeout(r, 50))
    expect((await status(s)).cache.resource.stats.joined).toBe(1)
    const narrow = await narrowing
    expect((await wide).status).toBe(500)
    await expectTruth(s, '/jobs/12?includes[]=address', narrow)
    expect(s.sim.count('/jobs/12')).toBe(2)
  })
})
