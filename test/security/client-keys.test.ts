import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { DEMO_TOKEN, startStack, type Stack } from '../helpers.js'

describe('client keys (PROXY_API_KEYS)', () => {
  let s: Stack
  beforeAll(async () => {
    s = await startStack({ env: { PROXY_API_KEYS: 'dashboard:dash-key-1,report-key-2' } })
  })
  afterAll(() => s.close())

  it('401 PROXY_KEY_REQUIRED without a key, PROXY_KEY_INVALID with a wrong one; nothing upstream', async () => {
    const none = await fetch(`${s.url}/api/v3/jobs`)
    expect(none.status).toBe(401)
    expect(await none.json()).toMatchObject({ error: { status_code: 401, code: 'PROXY_KEY_REQUIRED' } })
    const wrong: Array<Record<string, string>> = [{ authorization: 'Bearer nope' }, { 'x-proxy-key': 'dash-key-' }, { 'x-proxy-key': 'dash-key-1x' }]
    for (const headers of wrong) {
      const bad = await fetch(`${s.url}/api/v3/jobs`, { headers })
      expect(bad.status).toBe(401)
      expect(await bad.json()).toMatchObject({ error: { code: 'PROXY_KEY_INVALID' } })
    }
    const write = await fetch(`${s.url}/api/v3/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"customer_id":1}' })
    expect(write.status).toBe(401)
    expect(s.sim.calls).toHaveLength(0)
  })

  it('accepts a key as Bearer or X-Proxy-Key, never forwards it, and requires it for cached answers too', async () => {
    const a = await fetch(`${s.url}/api/v3/jobs/1`, { headers: { authorization: 'Bearer dash-key-1' } })
    expect(a.status).toBe(200)
    const b = await fetch(`${s.url}/api/v3/jobs/1`, { headers: { 'x-proxy-key': 'report-key-2' } })
    expect(b.headers.get('x-cache')).toBe('HIT')
    expect(s.sim.calls.at(-1)!.authorization).toBe(`Bearer ${DEMO_TOKEN}`)
    expect(s.sim.calls.at(-1)!.headers['x-proxy-key']).toBeUndefined()
    const cachedWithoutKey = await fetch(`${s.url}/api/v3/jobs/1`)
    expect(cachedWithoutKey.status).toBe(401)
  })

  it('names clients in the log line', async () => {
    await fetch(`${s.url}/api/v3/jobs/2`, { headers: { 'x-proxy-key': 'dash-key-1' } })
    await fetch(`${s.url}/api/v3/jobs/2`, { headers: { 'x-proxy-key': 'report-key-2' } })
    const lines = s.logs.map((l) => JSON.parse(l) as { msg: string; path?: string; client?: string }).filter((l) => l.msg === 'request' && l.path === '/api/v3/jobs/2')
    expect(lines.map((l) => l.client)).toEqual(['dashboard', 'client2'])
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toMatch(/^jobprogress_proxy_client_requests_total\{client="dashboard"\} \d+$/m)
    expect(metrics).toMatch(/^jobprogress_proxy_client_requests_total\{client="client2"\} \d+$/m)
    expect(metrics).not.toContain('dash-key-1')
  })

  it('health, readiness and metrics need no key', async () => {
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200)
    expect((await fetch(`${s.url}/metrics`)).status).toBe(200)
  })
})

describe('the start-up warning', () => {
  it('warns when there are no client keys and HOST is not loopback', async () => {
    const lines: string[] = []
    const { default: pino } = await import('pino')
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(l) })
    for (const [host, warned] of [
      ['0.0.0.0', true],
      ['127.0.0.1', false],
    ] as const) {
      lines.length = 0
      const loaded = loadConfig({ JOBPROGRESS_TOKEN: 't', HOST: host, CACHE_DIR: '' })
      const app = await buildApp({ ...loaded, logger })
      await app.close()
      expect(
        lines.some((l) => l.includes('PROXY_API_KEYS is empty')),
        host,
      ).toBe(warned)
    }
  })
})
