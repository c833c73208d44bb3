// Projection: an answer fetched with includes S answers the same request with R contained in S.
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { project, rewriteLink } from '../../src/cache/projection.js'
import { startStack, type Stack } from '../helpers.js'
import { expectTruth, get, proveJobs, status } from './resource-fixtures.js'

describe('projection of a wider answer', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('removes exactly the included keys, keeps every other byte and the key order (simulator answers)', async () => {
    s = await startStack()
    const wide = Buffer.from((await s.sim.render('/jobs/4?includes[]=address&includes[]=customer&includes[]=reps')).body)
    for (const narrow of [[], ['address'], ['customer', 'reps'], ['address', 'customer', 'reps']]) {
      const q = narrow.map((n) => `includes[]=${n}`).join('&')
      const real = (await s.sim.render(`/jobs/4${q ? '?' + q : ''}`)).body
      expect(project(wide, ['address', 'customer', 'reps'], narrow)?.toString()).toBe(real)
    }
  })

  it('refuses an answer whose included key is not after the base fields (an include named like a field)', () => {
    const body = Buffer.from('{"data":{"id":1,"insurance":0,"name":"x","address":{"id":2}},"status":200}')
    expect(project(body, ['address', 'insurance'], ['address'])).toBeUndefined()
    expect(project(body, ['address'], [])?.toString()).toBe('{"data":{"id":1,"insurance":0,"name":"x"},"status":200}')
    expect(project(Buffer.from('{"data":"text"}'), ['a'], [])).toBeUndefined()
    expect(project(Buffer.from('{"data":{"a":1,"a":2}}'), ['a'], [])).toBeUndefined()
  })

  it('rewrites pagination links to the narrower includes', () => {
    expect(rewriteLink('http://h/api/v3/jobs?limit=5&includes%5B%5D=address&includes%5B%5D=customer&page=2', ['customer'])).toBe('http://h/api/v3/jobs?limit=5&includes%5B%5D=customer&page=2')
    expect(rewriteLink('http://h/api/v3/jobs?includes=address,customer&page=2', [])).toBe('http://h/api/v3/jobs?page=2')
  })

  it('is not served before the route is proved by real pairs; then a narrower variant is a hit with no upstream call', async () => {
    s = await startStack()
    await get(s, '/jobs/5?includes[]=customer&includes[]=address')
    expect((await get(s, '/jobs/5?includes[]=address')).cache).toBe('MISS') // not proved yet: a real call
    await proveJobs(s)
    await get(s, '/jobs/6?includes[]=address&includes[]=customer')
    const before = s.sim.count('/jobs/6')
    for (const path of ['/jobs/6?includes[]=customer', '/jobs/6?includes=address', '/jobs/6']) {
      const got = await get(s, path)
      expect(got.cache, path).toBe('HIT')
      expect(got.cacheStatus).toContain('detail=projection')
      await expectTruth(s, path, got)
      expect(got.etag).toBe(`"${createHash('sha1').update(got.body).digest('base64url')}"`)
    }
    expect(s.sim.count('/jobs/6')).toBe(before)
    // materialised: the second time it is an ordinary hit
    expect((await get(s, '/jobs/6?includes[]=address')).cacheStatus).not.toContain('projection')
    expect((await status(s)).cache.resource.stats.projected).toBeGreaterThanOrEqual(3)
  })

  it('projects each item of a list, and its pagination links', async () => {
    s = await startStack()
    for (const p of ['/jobs?limit=4&page=2', '/jobs?limit=4&page=2&includes[]=address', '/jobs?limit=3', '/jobs?limit=3&includes[]=address']) await get(s, p)
    await get(s, '/jobs?limit=5&includes[]=trades&includes[]=address')
    const calls = s.sim.count('/jobs')
    for (const path of ['/jobs?limit=5&includes[]=trades', '/jobs?includes[]=address&limit=5', '/jobs?limit=5']) {
      const got = await get(s, path)
      expect(got.cache, path).toBe('HIT')
      await expectTruth(s, path, got)
    }
    expect(s.sim.count('/jobs')).toBe(calls)
  })

  it('a dotted include matches only the same dotted names', async () => {
    s = await startStack({ env: { CACHE_RULES: '/**!widening' } }) // projection alone
    await proveJobs(s)
    await get(s, '/jobs/8?includes[]=customer.phones&includes[]=address')
    const calls = s.sim.count('/jobs/8')
    const same = await get(s, '/jobs/8?includes[]=customer.phones')
    expect(same.cache).toBe('HIT')
    await expectTruth(s, '/jobs/8?includes[]=customer.phones', same)
    for (const path of ['/jobs/8?includes[]=customer', '/jobs/8?includes[]=address']) {
      const got = await get(s, path)
      expect(got.cache, path).toBe('MISS')
      await expectTruth(s, path, got)
    }
    expect(s.sim.count('/jobs/8')).toBe(calls + 2)
  })
})

describe('narrowing on a relation write', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('a customer write evicts job entries holding customers, and keeps each one without the customer', async () => {
    s = await startStack({ env: { CACHE_RULES: '/**!widening' } })
    await proveJobs(s)
    await get(s, '/jobs/1?includes[]=customer&includes[]=address') // job 1 belongs to customer 1
    const calls = s.sim.count('/jobs/1')
    const w = await fetch(`${s.url}/api/v3/customers/1`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"first_name":"Changed"}' })
    expect(w.status).toBe(200)
    const kept = await get(s, '/jobs/1?includes[]=address')
    expect(kept.cache).toBe('HIT')
    await expectTruth(s, '/jobs/1?includes[]=address', kept)
    const fresh = await get(s, '/jobs/1?includes[]=customer')
    expect(fresh.cache).toBe('MISS')
    expect((JSON.parse(fresh.body) as { data: { customer: { first_name: string } } }).data.customer.first_name).toBe('Changed')
    await expectTruth(s, '/jobs/1?includes[]=customer', fresh)
    expect(s.sim.count('/jobs/1')).toBe(calls + 1)
    expect((await status(s)).cache.resource.stats.narrowed).toBeGreaterThanOrEqual(1)
  })
})
