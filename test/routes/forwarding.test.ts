import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEMO_TOKEN, rawRequest, startStack, type Stack } from '../helpers.js'

describe('forwarding /api/v3/* with the server-held token', () => {
  let s: Stack
  beforeAll(async () => {
    s = await startStack({ env: { BODY_LIMIT_BYTES: '4096', CACHE_TTL_SECONDS: '60' } })
  })
  afterAll(() => s.close())

  it('answers a GET with the simulator answer and sends the query byte for byte', async () => {
    const q = '?limit=2&includes%5B%5D=address&note=a+b&z=%7e'
    const res = await fetch(`${s.url}/api/v3/customers${q}`)
    expect(res.status).toBe(200)
    const body = (await res.json()) as { data: unknown[]; meta: { pagination: { total: number } } }
    expect(body.data).toHaveLength(2)
    expect(body.meta.pagination.total).toBe(57)
    const call = s.sim.calls.at(-1)!
    expect(call.url).toBe(`/api/v3/customers${q}`)
  })

  it('attaches the token and never forwards the client Authorization, X-Proxy-Key or cookies', async () => {
    await fetch(`${s.url}/api/v3/jobs/3`, {
      headers: { authorization: 'Bearer client-own-token', 'x-proxy-key': 'k', cookie: 'a=b' },
    })
    const call = s.sim.calls.at(-1)!
    expect(call.path).toBe('/jobs/3')
    expect(call.authorization).toBe(`Bearer ${DEMO_TOKEN}`)
    expect(call.headers['x-proxy-key']).toBeUndefined()
    expect(call.headers.cookie).toBeUndefined()
  })

  it('drops hop-by-hop headers towards the upstream, including those named in Connection', async () => {
    const body = JSON.stringify({ customer_id: 1, name: 'hop' })
    const res = await rawRequest(
      s.port,
      `POST /api/v3/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n` +
        `connection: close, x-private\r\nx-private: secret\r\nx-keep: yes\r\nte: trailers\r\nproxy-authorization: Basic eA==\r\n\r\n${body}`,
    )
    expect(res.status).toBe(200)
    expect(res.headers['transfer-encoding']).toBeUndefined()
    const call = s.sim.calls.at(-1)!
    expect(call.headers['x-private']).toBeUndefined()
    expect(call.headers['x-keep']).toBe('yes')
    expect(call.headers.te).toBeUndefined()
    expect(call.headers['proxy-authorization']).toBeUndefined()
  })

  it('never passes the upstream Set-Cookie (nor its rate-limit headers) to clients', async () => {
    const get = await fetch(`${s.url}/api/v3/divisions`)
    expect(get.headers.get('set-cookie')).toBeNull()
    expect(get.headers.get('x-ratelimit-remaining')).toBeNull()
    const put = await fetch(`${s.url}/api/v3/jobs/4`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x' }),
    })
    expect(put.status).toBe(200)
    expect(put.headers.get('set-cookie')).toBeNull()
  })

  it('streams a JSON write and returns the real answer shape', async () => {
    const payload = JSON.stringify({ customer_id: 2, name: 'New roof', description: 'ünïcode ✓' })
    const res = await fetch(`${s.url}/api/v3/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload })
    const body = (await res.json()) as { message: string; job: { id: number; description: string } }
    expect(res.status).toBe(200)
    expect(body.message).toBe('Job saved successfully.')
    expect(body.job.description).toBe('ünïcode ✓')
    expect(s.sim.calls.at(-1)!.body).toBe(payload)
  })

  it('forwards form-encoded bodies with bracketed keys untouched', async () => {
    const form = 'first_name=Ann&last_name=Lee&phones%5B0%5D%5Bnumber%5D=5551234&phones%5B0%5D%5Blabel%5D=cell'
    const res = await fetch(`${s.url}/api/v3/customers`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    })
    const body = (await res.json()) as { customer: { first_name: string } }
    expect(res.status).toBe(200)
    expect(body.customer.first_name).toBe('Ann')
    expect(s.sim.calls.at(-1)!.headers['content-type']).toBe('application/x-www-form-urlencoded')
  })

  it('forwards multipart uploads byte for byte', async () => {
    const fd = new FormData()
    fd.append('file', new Blob([Buffer.alloc(2000, 7)]), 'estimate.pdf')
    const res = await fetch(`${s.url}/api/v3/jobs/5/estimates/upload`, { method: 'POST', body: fd })
    const body = (await res.json()) as { data: { name: string; size: number } }
    expect(res.status).toBe(200)
    expect(body.data.name).toBe('estimate.pdf')
    const call = s.sim.calls.at(-1)!
    expect(String(call.headers['content-type'])).toMatch(/^multipart\/form-data; boundary=/)
    expect(body.data.size).toBe(call.bodyBytes)
  })

  it('answers 413 BODY_TOO_LARGE past BODY_LIMIT_BYTES and sends nothing upstream', async () => {
    const before = s.sim.calls.length
    const res = await fetch(`${s.url}/api/v3/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customer_id: 1, description: 'x'.repeat(5000) }),
    })
    expect(res.status).toBe(413)
    expect(await res.json()).toMatchObject({ error: { status_code: 413, code: 'BODY_TOO_LARGE' } })
    expect(s.sim.calls.length).toBe(before)
  })

  it('passes the upstream own errors through unchanged (404, 412 with validation)', async () => {
    const r404 = await fetch(`${s.url}/api/v3/jobs/99999`)
    expect(r404.status).toBe(404)
    expect(await r404.json()).toEqual({ error: { status_code: 404, message: 'Job Not Found' } })
    const r412 = await fetch(`${s.url}/api/v3/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(r412.status).toBe(412)
    expect(await r412.json()).toEqual({
      error: { status_code: 412, message: 'Invalid data.', validation: { customer_id: ['The customer id field is required.'] } },
    })
    const unknown = await fetch(`${s.url}/api/v3/no/such/route`)
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toEqual({ message: 'Not found' })
  })
})

describe('an upstream 401 (bad token) passes through', () => {
  it('returns the upstream 401 unchanged', async () => {
    const s = await startStack({ sim: { tokens: ['another-token'] } })
    try {
      const res = await fetch(`${s.url}/api/v3/customers`)
      expect(res.status).toBe(401)
      expect(await res.json()).toEqual({ error: { status_code: 401, message: 'Unauthenticated.' } })
    } finally {
      await s.close()
    }
  })
})
