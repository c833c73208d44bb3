import { afterEach, describe, expect, it } from 'vitest'
import { createSimulator, DEMO_TOKEN, parseForm, type Simulator, type SimulatorOptions } from '../../simulator/app.js'

const auth = { authorization: `Bearer ${DEMO_TOKEN}` }

describe('the JobProgress simulator', () => {
  let sim: Simulator | undefined
  const start = async (o: SimulatorOptions = {}) => {
    sim = createSimulator(o)
    return sim.listen()
  }
  afterEach(async () => {
    await sim?.close()
    sim = undefined
  })

  it('lists with the pagination block, links repeating the query, limit clamped to 100', async () => {
    const url = await start()
    const r = await fetch(`${url}/customers?limit=5&page=2&query=`, { headers: auth })
    expect(r.status).toBe(200)
    expect(r.headers.get('cache-control')).toBe('no-cache, private')
    expect(r.headers.get('set-cookie')).toMatch(/^laravel_session=/)
    expect(r.headers.get('x-ratelimit-limit')).toBe('60')
    const b = (await r.json()) as { data: unknown[]; meta: { pagination: Record<string, unknown> }; status: number }
    expect(b.status).toBe(200)
    expect(b.data).toHaveLength(5)
    expect(b.meta.pagination).toMatchObject({ total: 57, count: 5, per_page: 5, current_page: 2, total_pages: 12 })
    const links = b.meta.pagination.links as Record<string, string>
    expect(links.next).toMatch(/\/api\/v3\/customers\?limit=5&page=3&query=$/)
    expect(links.previous).toMatch(/page=1/)
    const big = (await (await fetch(`${url}/jobs?limit=1000`, { headers: auth })).json()) as { data: unknown[]; meta: { pagination: { per_page: number } } }
    expect(big.data).toHaveLength(100)
    expect(big.meta.pagination.per_page).toBe(100)
    const last = (await (await fetch(`${url}/countries`, { headers: auth })).json()) as { meta: { pagination: { links: object } } }
    expect(last.meta.pagination.links).toEqual({})
  })

  it('includes: array and comma forms, unknown names ignored, item vs collection shapes', async () => {
    const url = await start()
    const a = (await (await fetch(`${url}/jobs/3?includes[]=address&includes[]=reps&includes[]=bogus`, { headers: auth })).json()) as { data: Record<string, unknown> }
    const b = (await (await fetch(`${url}/jobs/3?includes=reps,address`, { headers: auth })).json()) as { data: Record<string, unknown> }
    expect(a).toEqual(b)
    expect(a.data.address).toMatchObject({ id: expect.any(Number), city: expect.any(String) })
    expect(a.data.reps).toMatchObject({ data: expect.any(Array) })
    expect(a.data.bogus).toBeUndefined()
    const plain = (await (await fetch(`${url}/jobs/3`, { headers: auth })).json()) as { data: Record<string, unknown> }
    expect(plain.data.address).toBeUndefined()
    expect(plain.data.current_stage).toMatchObject({ name: expect.any(String), color: expect.any(String), code: expect.any(String) })
  })

  it('is deterministic', async () => {
    const one = createSimulator()
    const two = createSimulator()
    expect(JSON.stringify(one.data.jobs)).toBe(JSON.stringify(two.data.jobs))
  })

  it('writes with the real answer shapes, JSON and form-encoded', async () => {
    const url = await start()
    const created = await fetch(`${url}/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"customer_id":3,"name":"Roof"}' })
    expect(created.status).toBe(200)
    expect(await created.json()).toMatchObject({ message: 'Job saved successfully.', job: { id: 151, name: 'Roof' }, status: 200 })
    const cust = await fetch(`${url}/customers`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'first_name=Al&phones[0][number]=555&phones[0][label]=cell',
    })
    expect(await cust.json()).toMatchObject({ message: 'Customer saved successfully.', customer: { first_name: 'Al' } })
    const upd = await fetch(`${url}/jobs/151`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: '{"name":"Roof 2"}' })
    expect(await upd.json()).toMatchObject({ message: 'Job updated successfully.', data: { id: 151, name: 'Roof 2' } })
    expect(parseForm('a=1&b[]=2&b[]=3&c[0][d]=4')).toEqual({ a: '1', b: ['2', '3'], c: [{ d: '4' }] })
  })

  it('errors: 401 without rate headers, 404, 412 with validation, unknown route', async () => {
    const url = await start()
    const r401 = await fetch(`${url}/jobs`, { headers: { authorization: 'Bearer nope' } })
    expect(r401.status).toBe(401)
    expect(r401.headers.get('x-ratelimit-limit')).toBeNull()
    expect(await r401.json()).toEqual({ error: { status_code: 401, message: 'Unauthenticated.' } })
    expect(await (await fetch(`${url}/jobs/9999`, { headers: auth })).json()).toEqual({ error: { status_code: 404, message: 'Job Not Found' } })
    const r412 = await fetch(`${url}/jobs/9999`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' })
    expect(r412.status).toBe(412)
    expect(await r412.json()).toEqual({ error: { status_code: 412, message: 'No records found!' } })
    const unknown = await fetch(`${url}/nothing/here`, { headers: auth })
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toEqual({ message: 'Not found' })
  })

  it('throttles in a fixed window: 429 with Retry-After, bare 429, legacy 500', async () => {
    for (const mode of ['retry-after', 'bare', 'legacy500'] as const) {
      const url = await start({ rateLimit: 2, rateWindowMs: 60_000, throttleMode: mode })
      // the window is the clock's minute, as JobProgress's: the three calls must not straddle its turn
      const left = 60_000 - (Date.now() % 60_000)
      if (left < 2_000) await new Promise((r) => setTimeout(r, left + 50))
      const rs = []
      for (let i = 0; i < 3; i++) rs.push(await fetch(`${url}/divisions`, { headers: auth }))
      expect(rs[0]!.headers.get('x-ratelimit-remaining')).toBe('1')
      expect(rs[1]!.headers.get('x-ratelimit-remaining')).toBe('0')
      const third = rs[2]!
      if (mode === 'legacy500') {
        expect(third.status).toBe(500)
        expect(((await third.json()) as { error: { error_details: string } }).error.error_details).toMatch(/^Too Many Attempts\./)
      } else {
        expect(third.status).toBe(429)
        expect(third.headers.get('retry-after') !== null).toBe(mode === 'retry-after')
      }
      expect(sim!.throttled).toBe(1)
      await sim!.close()
      sim = undefined
    }
  })

  it('injects faults: status, html, not-json, truncated body', async () => {
    const url = await start()
    sim!.inject({ kind: 'status', status: 503, path: '/divisions' })
    expect((await fetch(`${url}/divisions`, { headers: auth })).status).toBe(503)
    sim!.inject({ kind: 'html', path: '/divisions' })
    expect((await fetch(`${url}/divisions`, { headers: auth })).headers.get('content-type')).toMatch(/text\/html/)
    sim!.inject({ kind: 'not-json', path: '/divisions' })
    expect(await (await fetch(`${url}/divisions`, { headers: auth })).text()).toBe('OK, but not JSON')
    sim!.inject({ kind: 'truncate', path: '/divisions' })
    await expect((await fetch(`${url}/divisions`, { headers: auth })).text()).rejects.toThrow()
    expect((await fetch(`${url}/divisions`, { headers: auth })).status).toBe(200)
  })
})
