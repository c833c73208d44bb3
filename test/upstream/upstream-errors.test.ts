import { afterEach, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { DEMO_TOKEN, freePort, startStack, type Stack } from '../helpers.js'

describe('upstream failures become the SPEC errors', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('connection refused -> 502 UPSTREAM_UNREACHABLE', async () => {
    const port = await freePort()
    const loaded = loadConfig({ JOBPROGRESS_TOKEN: DEMO_TOKEN, JOBPROGRESS_API_URL: `http://127.0.0.1:${port}/api/v3`, LOG_LEVEL: 'silent', CACHE_DIR: '' })
    const app = await buildApp(loaded)
    try {
      const res = await app.inject({ url: '/api/v3/jobs' })
      expect(res.statusCode).toBe(502)
      const body = res.json() as { error: { code: string; message: string } }
      expect(body.error.code).toBe('UPSTREAM_UNREACHABLE')
      expect(body.error.message).toMatch(/not sent/)
      const write = await app.inject({ method: 'POST', url: '/api/v3/jobs', payload: { customer_id: 1 } })
      expect(write.statusCode).toBe(502)
    } finally {
      await app.close()
    }
  })

  it('a reset before the answer -> 502 UPSTREAM_UNREACHABLE', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'reset', path: '/jobs/7' })
    const res = await fetch(`${s.url}/api/v3/jobs/7`)
    expect(res.status).toBe(502)
    expect(await res.json()).toMatchObject({ error: { status_code: 502, code: 'UPSTREAM_UNREACHABLE' } })
  })

  it('an upstream slower than UPSTREAM_TIMEOUT_MS -> 504 UPSTREAM_TIMEOUT', async () => {
    s = await startStack({ env: { UPSTREAM_TIMEOUT_MS: '300' } })
    s.sim.inject({ kind: 'hang', path: '/jobs/8', ms: 2000 })
    const started = Date.now()
    const res = await fetch(`${s.url}/api/v3/jobs/8`)
    expect(res.status).toBe(504)
    expect(await res.json()).toMatchObject({ error: { status_code: 504, code: 'UPSTREAM_TIMEOUT' } })
    expect(Date.now() - started).toBeLessThan(1900)
  })

  it('a write that times out says its outcome is unknown, and is not resent', async () => {
    s = await startStack({ env: { UPSTREAM_TIMEOUT_MS: '300' } })
    s.sim.inject({ kind: 'hang', method: 'PUT', path: '/jobs/9', ms: 1000 })
    const res = await fetch(`${s.url}/api/v3/jobs/9`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"t"}' })
    expect(res.status).toBe(504)
    const body = (await res.json()) as { error: { message: string } }
    expect(body.error.message).toMatch(/may or may not have been applied/)
    expect(s.sim.count('/jobs/9', 'PUT')).toBe(1)
  })

  it('a 500 from the upstream (not a throttle) passes through unchanged', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'status', status: 500, path: '/jobs/10' })
    const res = await fetch(`${s.url}/api/v3/jobs/10`)
    expect(res.status).toBe(500)
    expect(await res.json()).toEqual({ error: { status_code: 500, message: 'An internal error occured.' } })
  })
})
