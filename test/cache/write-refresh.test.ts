// Writes: a 2xx write's own answer refreshes the written resource's plain entry; queued fills are kept.
import { afterEach, describe, expect, it } from 'vitest'
import { startStack, until, type Stack } from '../helpers.js'
import { expectTruth, get, status } from './resource-fixtures.js'

describe('write refresh', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })
  const write = async (method: string, path: string, body: object) => {
    const r = await fetch(`${s!.url}/api/v3${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: r.status, body: (await r.json()) as Record<string, { id: number }> }
  }

  it('PUT answered {"data":...} refreshes the plain entry; the client gets the write answer unchanged; variants are evicted', async () => {
    s = await startStack({ env: { CACHE_RULES: '/**!widening' } })
    await get(s, '/jobs/30') // a real plain answer of /jobs/{id}
    await get(s, '/jobs/31')
    await get(s, '/jobs/31?includes[]=address')
    const w = await write('PUT', '/jobs/31', { name: 'New name' })
    expect(w.status).toBe(200)
    expect(w.body).toMatchObject({ message: 'Job updated successfully.', data: { name: 'New name' } })
    const plain = await get(s, '/jobs/31')
    expect(plain.cache).toBe('HIT')
    await expectTruth(s, '/jobs/31', plain)
    expect(s.sim.count('/jobs/31', 'GET')).toBe(2)
    const variant = await get(s, '/jobs/31?includes[]=address')
    expect(variant.cache).toBe('MISS')
    await expectTruth(s, '/jobs/31?includes[]=address', variant)
    expect((await status(s)).cache.resource.stats.write_refreshed).toBe(1)
  })

  it('a create answered {"job":...} / {"customer":...} stores the new resource at /jobs/{id}', async () => {
    s = await startStack()
    await get(s, '/jobs/30')
    await get(s, '/customers/3')
    const job = await write('POST', '/jobs', { customer_id: 3, name: 'Brand new' })
    const cust = await write('POST', '/customers', { first_name: 'Zoe' })
    for (const path of [`/jobs/${job.body.job!.id}`, `/customers/${cust.body.customer!.id}`]) {
      const got = await get(s, path)
      expect(got.cache, path).toBe('HIT')
      await expectTruth(s, path, got)
    }
    expect(s.sim.count(/^\/(jobs|customers)\/\d+$/, 'GET')).toBe(2)
  })

  it('evict only: before any real plain answer of the route, or when the answer has other keys', async () => {
    s = await startStack()
    await get(s, '/jobs/5')
    await write('PUT', '/jobs/5', { name: 'First' }) // no earlier plain answer of another job: it learned from /jobs/5 itself
    s.sim.quirks.updateAnswerExtraKey = true
    await write('PUT', '/jobs/6', { name: 'Second' })
    const six = await get(s, '/jobs/6')
    expect(six.cache).toBe('MISS')
    await expectTruth(s, '/jobs/6', six)
    await write('PUT', '/customers/4', { first_name: 'Nope' }) // no plain /customers/{id} answer seen yet
    expect((await get(s, '/customers/4')).cache).toBe('MISS')
  })

  it('a refreshed entry that differs from the next real answer turns write refresh off for the route', async () => {
    s = await startStack()
    s.sim.quirks.updateAnswerDiffers = true
    await get(s, '/jobs/30')
    await write('PUT', '/jobs/31', { name: 'x' })
    const real = await get(s, '/jobs/31', { 'cache-control': 'no-cache' })
    await expectTruth(s, '/jobs/31', real)
    const st = await status(s)
    expect(st.cache.resource.disabled).toEqual([expect.objectContaining({ lever: 'write-refresh', route: '/jobs/{id}' })])
    expect(s.logs.some((l) => l.includes('write-refresh turned off for /jobs/{id}'))).toBe(true)
    await write('PUT', '/jobs/32', { name: 'y' })
    const after = await get(s, '/jobs/32')
    expect(after.cache).toBe('MISS')
    await expectTruth(s, '/jobs/32', after)
  })

  it('a fill still queued when the write answer arrives is kept: sent after the write, it is stored', async () => {
    s = await startStack({ env: { CACHE_RULES: '/**!write-refresh', UPSTREAM_RATE_LIMIT: '2', UPSTREAM_RATE_WINDOW_MS: '1500' } })
    await get(s, '/jobs/8')
    s.sim.inject({ kind: 'delay', path: '/jobs/9', ms: 300 })
    await get(s, '/jobs/9')
    const x = get(s, '/jobs/99')
    await until(() => s!.app.upstream.throttle.depth === 1)
    const a = get(s, '/jobs/7')
    await until(() => s!.app.upstream.throttle.depth === 2)
    expect((await write('PUT', '/jobs/7', { name: 'Written first' })).status).toBe(200)
    const got = await a
    await x
    expect(got.cache).toBe('MISS')
    expect((JSON.parse(got.body) as { data: { name: string } }).data.name).toBe('Written first')
    const again = await get(s, '/jobs/7')
    expect(again.cache).toBe('HIT') // stored: the write did not spoil a call that was not sent yet
    await expectTruth(s, '/jobs/7', again)
    expect(s.sim.count('/jobs/7', 'GET')).toBe(1)
  })
})
