// Widening: a miss asks upstream for the includes recently requested on its route; the client gets
// exactly what it asked for, and the other variants become hits.
import { afterEach, describe, expect, it } from 'vitest'
import { sleep, startStack, type Stack } from '../helpers.js'
import { expectTruth, get, proveJobs, status } from './resource-fixtures.js'

const asked = (s: Stack, path: string) => s.sim.calls.filter((c) => c.path === path).map((c) => new URL(c.url, 'http://x').searchParams.getAll('includes[]').sort())

describe('widening', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('a miss asks for the includes recently requested on the route; the client gets exactly its own; other variants are hits', async () => {
    s = await startStack()
    await proveJobs(s) // customer was requested on /jobs/{id}
    await get(s, '/jobs/3?includes[]=address') // address too
    const got = await get(s, '/jobs/20?includes[]=reps')
    expect(got.cache).toBe('MISS')
    await expectTruth(s, '/jobs/20?includes[]=reps', got)
    expect(asked(s, '/jobs/20')).toEqual([['address', 'customer', 'reps']])
    for (const p of ['/jobs/20?includes[]=customer', '/jobs/20', '/jobs/20?includes[]=address&includes[]=reps']) {
      const g = await get(s, p)
      expect(g.cache, p).toBe('HIT')
      await expectTruth(s, p, g)
    }
    expect(s.sim.count('/jobs/20')).toBe(1)
    expect((await status(s)).cache.resource.stats.widened).toBeGreaterThanOrEqual(1)
  })

  it('never before the route is proved', async () => {
    s = await startStack()
    await get(s, '/jobs/1?includes[]=customer')
    await get(s, '/jobs/2')
    expect(asked(s, '/jobs/2')).toEqual([[]])
  })

  it('at most 8 names, and dotted names only when the request has them', async () => {
    s = await startStack()
    await proveJobs(s)
    for (const n of ['reps', 'trades', 'flags', 'division', 'projects', 'work_types', 'estimators', 'parent', 'sub_contractors', 'insurance_details']) {
      await get(s, `/jobs/40?includes[]=${n}`)
    }
    await get(s, '/jobs/41?includes[]=customer.phones')
    await get(s, '/jobs/42')
    const [wide] = asked(s, '/jobs/42')
    expect(wide!.length).toBe(8)
    expect(wide).not.toContain('customer.phones')
    const dotted = await get(s, '/jobs/43?includes[]=customer.phones')
    await expectTruth(s, '/jobs/43?includes[]=customer.phones', dotted)
    expect(asked(s, '/jobs/43')[0]).toContain('customer.phones')
  })

  it('an includes form the proxy does not merge (a modifier) is neither widened nor projected', async () => {
    s = await startStack()
    await proveJobs(s)
    await get(s, '/jobs/50?includes=customer:limit(1)')
    expect(s.sim.calls.filter((c) => c.path === '/jobs/50').map((c) => c.url)).toEqual(['/api/v3/jobs/50?includes=customer:limit(1)'])
    await get(s, '/jobs/51?includes[]=customer&includes[]=address')
    const odd = await get(s, '/jobs/51?includes=customer:limit(1)')
    expect(odd.cache).toBe('MISS')
    expect(s.sim.count('/jobs/51')).toBe(2)
  })

  it('only names requested within the TTL', async () => {
    s = await startStack({ env: { CACHE_TTL_SECONDS: '1' } })
    await proveJobs(s)
    await get(s, '/jobs/3?includes[]=address')
    await sleep(1100)
    await proveJobs(s, [4, 5]) // the route is still proved; customer was asked again, address was not
    await get(s, '/jobs/30')
    expect(asked(s, '/jobs/30')).toEqual([['customer']])
  })
})
