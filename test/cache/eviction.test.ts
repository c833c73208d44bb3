import { afterEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers.js'

describe('eviction after writes', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })
  const get = (path: string) => fetch(`${s!.url}/api/v3${path}`).then((r) => r.headers.get('x-cache'))
  const write = (method: string, path: string, body: object) => fetch(`${s!.url}/api/v3${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const warm = async (paths: string[]) => {
    for (const p of paths) await get(p)
    for (const p of paths) expect(await get(p), p).toBe('HIT')
  }

  it('PUT /jobs/11 evicts /jobs/11 (any query), its subtree and /jobs listings, not /jobs/12', async () => {
    // eviction alone: the write's answer would otherwise refresh /jobs/11 (test/cache/write-refresh.test.ts)
    s = await startStack({ env: { CACHE_RULES: '/**!write-refresh' } })
    const evicted = ['/jobs/11', '/jobs/11?includes[]=address', '/jobs/11/notes', '/jobs?limit=3', '/jobs']
    const kept = ['/jobs/12', '/jobs/12/notes', '/jobs/110', '/customers/3', '/divisions']
    await warm([...evicted, ...kept])
    expect((await write('PUT', '/jobs/11', { name: 'x' })).status).toBe(200)
    for (const p of evicted) expect(await get(p), p).toBe('MISS')
    for (const p of kept) expect(await get(p), p).toBe('HIT')
  })

  it('POST /jobs/11/notes evicts /jobs/11/notes*, /jobs/11* and /jobs?...', async () => {
    s = await startStack()
    await warm(['/jobs/11/notes?limit=5', '/jobs/11', '/jobs?page=2', '/jobs/12/notes'])
    expect((await write('POST', '/jobs/11/notes', { note: 'hello' })).status).toBe(200)
    expect(await get('/jobs/11/notes?limit=5')).toBe('MISS')
    expect(await get('/jobs/11')).toBe('MISS')
    expect(await get('/jobs?page=2')).toBe('MISS')
    expect(await get('/jobs/12/notes')).toBe('HIT')
  })

  it('the next read after a write sees the written data', async () => {
    s = await startStack()
    await get('/jobs/13')
    await write('PUT', '/jobs/13', { name: 'after the write' })
    const r = (await (await fetch(`${s.url}/api/v3/jobs/13`)).json()) as { data: { name: string } }
    expect(r.data.name).toBe('after the write')
  })

  it('built-in links: PUT /jobs/notes/5 evicts every /jobs/{id}/notes; a job write evicts customers with includes[]=jobs', async () => {
    s = await startStack()
    await warm(['/jobs/2/notes', '/jobs/7/notes', '/customers/5?includes[]=jobs', '/customers/5', '/customers?includes=jobs,address'])
    expect((await write('PUT', '/jobs/notes/5', { note: 'edited' })).status).toBe(200)
    expect(await get('/jobs/2/notes')).toBe('MISS')
    expect(await get('/jobs/7/notes')).toBe('MISS')
    expect(await get('/customers/5?includes[]=jobs')).toBe('MISS') // a job-notes write is under /jobs/**
    expect(await get('/customers/5')).toBe('HIT')
    expect(await get('/customers?includes=jobs,address')).toBe('MISS')
  })

  it('user links from CACHE_RULES, with $1 captures', async () => {
    s = await startStack({ env: { CACHE_RULES: '/appointments/*>/jobs/*/financial_summary, /jobs/*/notes>/jobs/$1/financial_summary' } })
    await warm(['/jobs/3/financial_summary', '/jobs/4/financial_summary'])
    expect((await write('POST', '/jobs/3/notes', { note: 'n' })).status).toBe(200)
    expect(await get('/jobs/3/financial_summary')).toBe('MISS')
    expect(await get('/jobs/4/financial_summary')).toBe('HIT')
    expect((await write('PUT', '/appointments/2', { title: 't' })).status).toBe(200)
    expect(await get('/jobs/4/financial_summary')).toBe('MISS')
  })

  it('a failed write (412) evicts nothing', async () => {
    s = await startStack()
    await warm(['/jobs'])
    expect((await write('PUT', '/jobs/99999', { name: 'x' })).status).toBe(412)
    expect(await get('/jobs')).toBe('HIT')
  })

  it('a fill in flight when the write lands answers its waiter but is not stored', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'delay', path: '/jobs/14', ms: 300 })
    const slowRead = fetch(`${s.url}/api/v3/jobs/14`)
    await new Promise((r) => setTimeout(r, 100))
    expect((await write('PUT', '/jobs/14', { name: 'newer' })).status).toBe(200)
    expect((await slowRead).status).toBe(200)
    const next = await fetch(`${s.url}/api/v3/jobs/14`)
    expect(next.headers.get('x-cache')).toBe('MISS')
    expect(((await next.json()) as { data: { name: string } }).data.name).toBe('newer')
  })
})
