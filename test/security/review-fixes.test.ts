// Issue 11, points 2, 3, 6, 9, 10, 12: what a black-box review of the running proxy found.
import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { isLegacyThrottle } from '../../src/upstream/client.js'
import { rawRequest, startStack, until, type Stack } from '../helpers.js'
import { Conn, send } from './raw-http.js'

type ErrorBody = { error: { status_code: number; code: string; message: string } }
type Status = { upstream: { throttled: number; paused_for_ms: number; calls: number }; cache: { entries: number } }

let s: Stack | undefined
afterEach(async () => {
  await s?.close()
  s = undefined
})
const status = async () => (await (await fetch(`${s!.url}/_proxy/status`)).json()) as Status

/** A JSON 500 of `size` bytes, not a throttle (a debug page with a long trace). */
function big500(size: number): Buffer {
  const head = '{"error":{"status_code":500,"message":"An internal error occured.","trace":"'
  const tail = '"}}'
  return Buffer.from(head + 'x'.repeat(size - head.length - tail.length) + tail)
}

describe('point 2: a 500 larger than the throttle peek is passed on whole, the connection in step', () => {
  for (const method of ['POST', 'GET'] as const) {
    it(`${method}: the whole body with a consistent length, and the next answer on the same keep-alive connection is intact`, async () => {
      s = await startStack()
      const body = big500(200 * 1024)
      s.sim.inject({ kind: 'answer', method, path: '/jobs/9', status: 500, headers: { 'content-length': String(body.length) }, body })
      const c = new Conn(s.port)
      try {
        const payload = '{"name":"renamed"}'
        c.write(
          method === 'POST'
            ? `POST /api/v3/jobs/9 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n\r\n${payload}`
            : 'GET /api/v3/jobs/9 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n',
        )
        const first = await c.read()
        expect(first.status).toBe(500)
        expect(first.body.length).toBe(body.length)
        expect(first.body.equals(body)).toBe(true)
        if (first.headers['content-length'] !== undefined) expect(Number(first.headers['content-length'])).toBe(body.length)
        // the next request on the same connection gets its own answer, not bytes of the first
        c.write('GET /api/v3/jobs/1 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n')
        const second = await c.read()
        expect(second.status).toBe(200)
        expect((second.json() as { data: { id: number } }).data.id).toBe(1)
        c.write('GET /api/v3/jobs/2 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n')
        expect((await c.read()).status).toBe(200)
        expect(c.pending).toBe(0)
      } finally {
        c.close()
      }
      expect(s.sim.count('/jobs/9', method)).toBe(1)
      expect((await status()).upstream.throttled).toBe(0)
    })
  }

  it('a client that leaves during a large 500 to a write does not hurt the proxy', async () => {
    s = await startStack()
    const body = big500(8 * 1024 * 1024)
    s.sim.inject({ kind: 'answer', method: 'POST', path: '/jobs/9/notes', status: 500, headers: { 'content-length': String(body.length) }, body })
    const head = await new Promise<string>((resolve, reject) => {
      const socket = connect(s!.port, '127.0.0.1')
      socket.once('data', (chunk: Buffer) => {
        socket.destroy() // leaves after the first bytes of the answer
        resolve(chunk.toString('latin1', 0, 12))
      })
      socket.on('error', reject)
      socket.write('POST /api/v3/jobs/9/notes HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}')
    })
    expect(head).toBe('HTTP/1.1 500')
    // the upstream body is let go of: the call gives its concurrency slot back
    await until(async () => ((await status()) as unknown as { upstream: { running: number } }).upstream.running === 0)
    expect((await fetch(`${s.url}/api/v3/jobs/1`)).status).toBe(200)
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
  })

  it('a small 500 is passed on with its exact length too', async () => {
    s = await startStack()
    const body = big500(3000)
    s.sim.inject({ kind: 'answer', method: 'PUT', path: '/jobs/10', status: 500, body })
    const r = await send(s.port, { method: 'PUT', path: '/api/v3/jobs/10', headers: { host: '127.0.0.1', 'content-type': 'application/json' }, body: '{}' })
    expect(r.status).toBe(500)
    expect(r.body.equals(body)).toBe(true)
  })
})

describe('point 3: the legacy throttle only by its exact shape; a write resent only after a sure throttle', () => {
  const LEGACY = {
    error: {
      status_code: 500,
      message: 'An internal error occured.',
      error_details: 'Too Many Attempts. in file /var/www/vendor/laravel/framework/src/Illuminate/Routing/Middleware/ThrottleRequests.php on line 56',
    },
  }

  it('a write answered 500 that echoes "Too Many Attempts." is sent once and its answer passed on', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_WINDOW_MS: '2000', QUEUE_TIMEOUT_MS: '3000' } })
    const echo = JSON.stringify({ error: { status_code: 500, message: 'Could not save note "Too Many Attempts." (duplicate)' } })
    s.sim.inject({ kind: 'answer', method: 'POST', path: '/jobs/1/notes', status: 500, body: echo })
    const r = await send(s.port, { method: 'POST', path: '/api/v3/jobs/1/notes', headers: { host: '127.0.0.1', 'content-type': 'application/json' }, body: '{"note":"Too Many Attempts."}' })
    expect(r.status).toBe(500)
    expect(r.text).toBe(echo)
    expect(s.sim.count('/jobs/1/notes', 'POST')).toBe(1)
    const st = await status()
    expect(st.upstream.throttled).toBe(0)
    expect(st.upstream.paused_for_ms).toBe(0)
  })

  it('near misses pass through: an HTML page, another message, error_details not at the start, not JSON', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_WINDOW_MS: '2000', QUEUE_TIMEOUT_MS: '3000' } })
    const bodies = [
      '<html><body>Too Many Attempts. in file ThrottleRequests.php</body></html>',
      JSON.stringify({ error: { ...LEGACY.error, message: 'Server Error' } }),
      JSON.stringify({ error: { ...LEGACY.error, error_details: 'Error: Too Many Attempts. in file x' } }),
      JSON.stringify({ message: 'An internal error occured.', error_details: LEGACY.error.error_details }),
    ]
    for (const [i, body] of bodies.entries()) {
      s.sim.inject({ kind: 'answer', method: 'GET', path: `/jobs/${20 + i}`, status: 500, body })
      const r = await send(s.port, { path: `/api/v3/jobs/${20 + i}`, headers: { host: '127.0.0.1' } })
      expect(r.status, body).toBe(500)
      expect(r.text).toBe(body)
      expect(s.sim.count(`/jobs/${20 + i}`, 'GET')).toBe(1)
    }
    expect((await status()).upstream.throttled).toBe(0)
  })

  it('the exact legacy shape is still a throttle: absorbed, the write resent, the client gets the real answer', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_WINDOW_MS: '300' } })
    s.sim.inject({ kind: 'answer', method: 'POST', path: '/jobs/1/notes', status: 500, body: JSON.stringify(LEGACY) })
    const r = await send(s.port, { method: 'POST', path: '/api/v3/jobs/1/notes', headers: { host: '127.0.0.1', 'content-type': 'application/json' }, body: '{"note":"n"}' })
    expect(r.status).toBe(200)
    expect(s.sim.count('/jobs/1/notes', 'POST')).toBe(2)
    expect((await status()).upstream.throttled).toBe(1)
  })

  it('isLegacyThrottle itself', () => {
    expect(isLegacyThrottle(Buffer.from(JSON.stringify(LEGACY)))).toBe(true)
    expect(isLegacyThrottle(Buffer.from('Too Many Attempts.'))).toBe(false)
    expect(isLegacyThrottle(Buffer.from('null'))).toBe(false)
    expect(isLegacyThrottle(Buffer.from('{"error":null}'))).toBe(false)
    expect(isLegacyThrottle(Buffer.from(JSON.stringify({ error: { ...LEGACY.error, error_details: 42 } })))).toBe(false)
  })
})

describe('point 6: the upstream path is the base plus exactly what follows a literal /api/v3/', () => {
  const targets = [
    'GET http://x/api/v3/jobs/1 HTTP/1.1',
    'GET http://127.0.0.1/api/v3/jobs/1 HTTP/1.1',
    'GET https://api.jobprogress.com/api/v3/jobs HTTP/1.1',
    'GET /api/v%33/jobs HTTP/1.1',
    'GET /api/v%33-internal/jobs HTTP/1.1',
    'GET /%61pi/v3/jobs HTTP/1.1',
    'GET /api%2fv3/jobs HTTP/1.1',
    'GET /api/%76%33/jobs HTTP/1.1',
    'POST http://x/api/v3/jobs HTTP/1.1',
    'POST /api/v%33/jobs HTTP/1.1',
    'DELETE /%61pi/v3/jobs/1 HTTP/1.1',
  ]
  it('absolute-form targets and encoded prefixes -> 400 (or 404), and no upstream call', async () => {
    s = await startStack()
    for (const line of targets) {
      const write = !line.startsWith('GET')
      const r = await rawRequest(s.port, `${line}\r\nhost: 127.0.0.1\r\nconnection: close\r\n${write ? 'content-type: application/json\r\ncontent-length: 2\r\n' : ''}\r\n${write ? '{}' : ''}`)
      expect([400, 404], line).toContain(r.status)
      const body = JSON.parse(r.body) as ErrorBody
      expect(body.error.status_code).toBe(r.status)
      expect(['BAD_REQUEST', 'NOT_FOUND']).toContain(body.error.code)
    }
    expect(s.sim.calls.map((c) => c.url)).toEqual([])
    // the literal prefix still works, with and without a query
    expect((await fetch(`${s.url}/api/v3/jobs/1`)).status).toBe(200)
    expect((await fetch(`${s.url}/api/v3/jobs?limit=2`)).status).toBe(200)
    expect(s.sim.calls.map((c) => c.url)).toEqual(['/api/v3/jobs/1', '/api/v3/jobs?limit=2'])
  })
})

describe('point 9: a 429 pause is capped at two windows', () => {
  it('Retry-After: 3600 pauses at most 2 x UPSTREAM_RATE_WINDOW_MS; the call is retried and answered', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_WINDOW_MS: '400', QUEUE_TIMEOUT_MS: '5000' } })
    s.sim.inject({ kind: 'answer', method: 'GET', path: '/jobs/11', status: 429, headers: { 'retry-after': '3600' }, body: '{"error":{"status_code":429,"message":"Too Many Attempts."}}' })
    const started = Date.now()
    const pending = fetch(`${s.url}/api/v3/jobs/11`)
    await new Promise((r) => setTimeout(r, 100))
    expect((await status()).upstream.paused_for_ms).toBeLessThanOrEqual(800)
    const r = await pending
    expect(r.status).toBe(200)
    expect(Date.now() - started).toBeLessThan(4000)
    // another client is not held for an hour either
    expect((await fetch(`${s.url}/api/v3/jobs/12`)).status).toBe(200)
    expect(s.sim.count('/jobs/11', 'GET')).toBe(2)
  })
})

describe('point 10: DELETE /_proxy/cache with an unknown parameter -> 400, nothing purged', () => {
  it('a misspelt prefix purges nothing', async () => {
    s = await startStack({ env: { ADMIN_KEY: 'adm-1' } })
    await fetch(`${s.url}/api/v3/jobs/1`)
    await fetch(`${s.url}/api/v3/customers/1`)
    const entries = (await status()).cache.entries
    expect(entries).toBe(2)
    for (const q of ['?prefx=/jobs', '?prefix=/jobs&all=1', '?PREFIX=/jobs', '?prefix=/jobs&prefix=/customers']) {
      const r = await fetch(`${s.url}/_proxy/cache${q}`, { method: 'DELETE', headers: { authorization: 'Bearer adm-1' } })
      expect(r.status, q).toBe(400)
      expect(await r.json()).toMatchObject({ error: { status_code: 400, code: 'BAD_REQUEST' } })
    }
    expect((await status()).cache.entries).toBe(entries)
    expect((await fetch(`${s.url}/api/v3/jobs/1`)).headers.get('x-cache')).toBe('HIT')
    const ok = await fetch(`${s.url}/_proxy/cache?prefix=/jobs`, { method: 'DELETE', headers: { authorization: 'Bearer adm-1' } })
    expect(await ok.json()).toEqual({ purged: 1, prefix: '/jobs' })
  })
})

describe('point 12: an upstream status outside 100-599 -> 502 UPSTREAM_UNREACHABLE', () => {
  it('for a cached path and for a write (whose outcome is then unknown)', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'answer', method: 'GET', path: '/jobs/13', status: 600, body: '{"weird":true}' })
    const get = await fetch(`${s.url}/api/v3/jobs/13`)
    expect(get.status).toBe(502)
    expect(await get.json()).toMatchObject({ error: { status_code: 502, code: 'UPSTREAM_UNREACHABLE' } })
    s.sim.inject({ kind: 'answer', method: 'PUT', path: '/jobs/13', status: 999, body: '{}' })
    const put = await fetch(`${s.url}/api/v3/jobs/13`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"n"}' })
    expect(put.status).toBe(502)
    const body = (await put.json()) as ErrorBody
    expect(body.error.code).toBe('UPSTREAM_UNREACHABLE')
    expect(body.error.message).toMatch(/may or may not/)
    expect(s.sim.count('/jobs/13', 'PUT')).toBe(1)
    // the proxy keeps serving
    expect((await fetch(`${s.url}/api/v3/jobs/13`)).status).toBe(200)
  })
})
