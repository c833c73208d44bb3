import { afterEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers.js'

describe('upstream faults: never cached, stale where allowed, else the SPEC errors', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })
  const get = (path: string) => fetch(`${s!.url}/api/v3${path}`)

  it('reset mid-body -> 502, not cached', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'reset-mid-body', path: '/jobs/51' })
    const r = await get('/jobs/51')
    expect(r.status).toBe(502)
    expect(await r.json()).toMatchObject({ error: { code: 'UPSTREAM_UNREACHABLE' } })
    expect((await get('/jobs/51')).headers.get('x-cache')).toBe('MISS')
  })

  it('an HTML error page passes through as the upstream answer, and is not cached', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'html', status: 502, path: '/jobs/52' })
    const r = await get('/jobs/52')
    expect(r.status).toBe(502)
    expect(r.headers.get('content-type')).toMatch(/text\/html/)
    expect(await r.text()).toContain('Bad Gateway')
    expect((await get('/jobs/52')).status).toBe(200)
  })

  it('a 200 that is not JSON is passed on but never stored', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'not-json', path: '/jobs/53' })
    const r = await get('/jobs/53')
    expect(r.status).toBe(200)
    expect(await r.text()).toBe('OK, but not JSON')
    expect(r.headers.get('cache-status')).not.toMatch(/stored/)
    const next = await get('/jobs/53')
    expect(next.headers.get('x-cache')).toBe('MISS')
    expect(((await next.json()) as { data: { id: number } }).data.id).toBe(53)
  })

  it('a truncated body (Content-Length larger than sent) -> 502, not cached', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'truncate', path: '/jobs/54' })
    expect((await get('/jobs/54')).status).toBe(502)
    expect((await get('/jobs/54')).headers.get('x-cache')).toBe('MISS')
  })

  it('a truncated pass-through answer to a write cuts the client connection (it cannot be a clean answer)', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'truncate', method: 'PUT', path: '/jobs/55' })
    const outcome = await fetch(`${s.url}/api/v3/jobs/55`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"t"}' })
      .then((r) => r.text())
      .then(
        () => 'complete',
        () => 'cut',
      )
    expect(outcome).toBe('cut')
    expect((await get('/jobs/1')).status).toBe(200)
  })
})
