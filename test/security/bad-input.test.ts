import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rawRequest, startStack, type Stack } from '../helpers.js'

describe('bad input: a clear 4xx in the SPEC shape, nothing upstream, nothing crashes', () => {
  let s: Stack
  beforeAll(async () => {
    s = await startStack({ env: { BODY_LIMIT_BYTES: '10000' } })
  })
  afterAll(() => s.close())

  const expectError = (body: string, status: number, code: string) => {
    const parsed = JSON.parse(body) as { error: { status_code: number; code: string; message: string } }
    expect(parsed.error).toMatchObject({ status_code: status, code })
    expect(parsed.error.message.length).toBeGreaterThan(5)
  }

  it('a 100 KB query string -> 431, nothing upstream', async () => {
    const before = s.sim.calls.length
    const res = await rawRequest(s.port, `GET /api/v3/jobs?keyword=${'a'.repeat(100_000)} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`)
    expect(res.status).toBe(431)
    expectError(res.body, 431, 'HEADERS_TOO_LARGE')
    expect(s.sim.calls.length).toBe(before)
  })

  it('5,000 includes[] -> 431 in the array form; 2,000 in the comma form are one key, one call', async () => {
    const array = Array.from({ length: 5000 }, (_, i) => `includes[]=n${i}`).join('&')
    const res = await rawRequest(s.port, `GET /api/v3/jobs?${array} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`)
    expect(res.status).toBe(431)
    const names = Array.from({ length: 2000 }, (_, i) => `n${i % 50}`).join(',')
    const before = s.sim.calls.length
    const a = await fetch(`${s.url}/api/v3/jobs?includes=${names}`)
    const b = await fetch(`${s.url}/api/v3/jobs?includes=${names.split(',').reverse().join(',')}`)
    expect([a.status, b.status]).toEqual([200, 200])
    expect(b.headers.get('x-cache')).toBe('HIT')
    expect(s.sim.calls.length).toBe(before + 1)
  })

  it('headers over 16 KiB -> 431', async () => {
    const res = await rawRequest(s.port, `GET /api/v3/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nx-big: ${'b'.repeat(20_000)}\r\n\r\n`)
    expect(res.status).toBe(431)
    expectError(res.body, 431, 'HEADERS_TOO_LARGE')
  })

  it('unknown methods: a known HTTP verb on no route -> 404, a made-up one -> 400', async () => {
    const before = s.sim.calls.length
    const propfind = await rawRequest(s.port, 'PROPFIND /api/v3/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n')
    expect(propfind.status).toBe(404)
    expectError(propfind.body, 404, 'NOT_FOUND')
    const made = await rawRequest(s.port, 'FROBNICATE /api/v3/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n')
    expect(made.status).toBe(400)
    expectError(made.body, 400, 'BAD_REQUEST')
    expect(s.sim.calls.length).toBe(before)
  })

  it('a body over the limit -> 413, even when chunked (no Content-Length)', async () => {
    const before = s.sim.calls.length
    const chunk = 'x'.repeat(4000)
    const chunked = [chunk, chunk, chunk, chunk].map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n'
    const res = await rawRequest(s.port, `POST /api/v3/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${chunked}`)
    expect(res.status).toBe(413)
    expectError(res.body, 413, 'BODY_TOO_LARGE')
    expect(s.sim.calls.length).toBe(before)
  })

  it('invalid JSON is passed through untouched: the upstream judges it', async () => {
    const body = '{"customer_id": 1, oops'
    const res = await fetch(`${s.url}/api/v3/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    expect(res.status).toBe(400) // the simulator's own answer
    expect(s.sim.calls.at(-1)!.body).toBe(body)
  })

  it('still serves after all of the above', async () => {
    expect((await fetch(`${s.url}/api/v3/jobs/1`)).status).toBe(200)
  })
})

describe('slow clients (slow-loris)', () => {
  it('headers that never finish arriving -> the connection is closed (408)', async () => {
    const s = await startStack({})
    await s.app.close()
    await s.sim.close()
    const { buildApp } = await import('../../src/app.js')
    const { loadConfig } = await import('../../src/config.js')
    const app = await buildApp({
      ...loadConfig({ JOBPROGRESS_TOKEN: 't', JOBPROGRESS_API_URL: 'http://127.0.0.1:9/api/v3', LOG_LEVEL: 'silent', CACHE_DIR: '' }),
      timeouts: { headersMs: 300, requestMs: 600, checkMs: 100 },
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as { port: number }).port
    try {
      const { connect } = await import('node:net')
      const started = Date.now()
      const outcome = await new Promise<string>((resolve) => {
        const sock = connect(port, '127.0.0.1', () => sock.write('GET /api/v3/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\n'))
        let data = ''
        sock.on('data', (d) => (data += String(d)))
        sock.on('close', () => resolve(data))
        setTimeout(() => sock.destroy(), 5000)
      })
      expect(Date.now() - started).toBeLessThan(3000)
      expect(outcome).toMatch(/^HTTP\/1.1 408/)
      expect(outcome).toContain('REQUEST_TIMEOUT')
    } finally {
      await app.close()
    }
  })
})
