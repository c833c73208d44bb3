import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rawRequest, startStack, type Stack } from '../helpers.js'

describe('cache headers, validators, HEAD and client directives', () => {
  let s: Stack
  beforeAll(async () => {
    s = await startStack()
  })
  afterAll(() => s.close())
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${s.url}/api/v3${path}`, { headers })

  it('MISS then HIT, with Cache-Status (RFC 9211), Age on HIT and one strong ETag', async () => {
    const miss = await get('/jobs/41')
    expect(miss.headers.get('x-cache')).toBe('MISS')
    expect(miss.headers.get('cache-status')).toBe('jobprogress-proxy; fwd=miss; fwd-status=200; stored')
    expect(miss.headers.get('age')).toBeNull()
    const etag = miss.headers.get('etag')!
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/)
    const hit = await get('/jobs/41')
    expect(hit.headers.get('x-cache')).toBe('HIT')
    expect(hit.headers.get('cache-status')).toMatch(/^jobprogress-proxy; hit; ttl=\d+$/)
    expect(hit.headers.get('age')).toMatch(/^\d+$/)
    expect(hit.headers.get('etag')).toBe(etag)
    expect(hit.headers.get('content-type')).toMatch(/application\/json/)
    expect(await hit.text()).toBe(await miss.text())
  })

  it('If-None-Match with the ETag -> 304 without a body; another tag -> 200', async () => {
    const etag = (await get('/jobs/42')).headers.get('etag')!
    const raw = await rawRequest(s.port, `GET /api/v3/jobs/42 HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nif-none-match: W/"x", ${etag}\r\n\r\n`)
    expect(raw.status).toBe(304)
    expect(raw.body).toBe('')
    expect(raw.headers.etag).toBe(etag)
    // (fetch would add Cache-Control: no-cache to a conditional request: send it raw)
    const other = await rawRequest(s.port, 'GET /api/v3/jobs/42 HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nif-none-match: "other"\r\n\r\n')
    expect(other.status).toBe(200)
    expect(other.headers['x-cache']).toBe('HIT')
    expect(s.sim.count('/jobs/42')).toBe(1)
  })

  it('HEAD is answered from the entry, without a body and without an upstream call', async () => {
    const full = await get('/jobs/43')
    const len = (await full.arrayBuffer()).byteLength
    const head = await fetch(`${s.url}/api/v3/jobs/43`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('x-cache')).toBe('HIT')
    expect(Number(head.headers.get('content-length'))).toBe(len)
    expect(s.sim.count('/jobs/43')).toBe(1)
    const raw = await rawRequest(s.port, 'HEAD /api/v3/jobs/43 HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n')
    expect(raw.body).toBe('')
  })

  it('Cache-Control: no-cache (or max-age=0) refetches and stores the new answer', async () => {
    await get('/jobs/44')
    s.sim.data.jobs.find((j) => j.id === 44)!.name = 'renamed'
    const forced = await get('/jobs/44', { 'cache-control': 'no-cache' })
    expect(forced.headers.get('x-cache')).toBe('MISS')
    expect(forced.headers.get('cache-status')).toMatch(/fwd=request/)
    expect(((await forced.json()) as { data: { name: string } }).data.name).toBe('renamed')
    const after = await get('/jobs/44')
    expect(after.headers.get('x-cache')).toBe('HIT')
    expect(((await after.json()) as { data: { name: string } }).data.name).toBe('renamed')
    await get('/jobs/44', { 'cache-control': 'max-age=0' })
    expect(s.sim.count('/jobs/44')).toBe(3)
  })

  it('a Cache-Control that only looks like a directive (x-no-cache) is a plain hit', async () => {
    await get('/jobs/46')
    const r = await get('/jobs/46', { 'cache-control': 'x-no-cache, foo-max-age=0' })
    expect(r.status).toBe(200)
    expect(r.headers.get('x-cache')).toBe('HIT')
    expect(s.sim.count('/jobs/46')).toBe(1)
  })

  it('Cache-Control: no-store bypasses the cache and leaves the entry alone', async () => {
    await get('/jobs/45')
    s.sim.data.jobs.find((j) => j.id === 45)!.name = 'changed'
    const bypass = await get('/jobs/45', { 'cache-control': 'no-store' })
    expect(bypass.headers.get('x-cache')).toBe('BYPASS')
    expect(((await bypass.json()) as { data: { name: string } }).data.name).toBe('changed')
    const hit = await get('/jobs/45')
    expect(hit.headers.get('x-cache')).toBe('HIT')
    expect(((await hit.json()) as { data: { name: string } }).data.name).not.toBe('changed')
  })

  it('an upstream Cache-Control: no-store answer is not stored', async () => {
    s.sim.inject({ kind: 'no-store', path: '/referrals' })
    const r = await get('/referrals')
    expect(r.status).toBe(200)
    expect(r.headers.get('cache-status')).not.toMatch(/stored/)
    expect((await get('/referrals')).headers.get('x-cache')).toBe('MISS')
    expect(s.sim.count('/referrals')).toBe(2)
  })

  it('a GET with a body is refused with 400 and nothing upstream', async () => {
    const before = s.sim.calls.length
    const raw = await rawRequest(s.port, 'GET /api/v3/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}')
    expect(raw.status).toBe(400)
    expect(JSON.parse(raw.body)).toMatchObject({ error: { code: 'BAD_REQUEST' } })
    expect(s.sim.calls.length).toBe(before)
  })
})
