// Issue 11, point 1: a web page must not be able to use the proxy (CSRF, DNS rebinding, CORS).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig, ConfigError } from '../../src/config.js'
import { HostPolicy } from '../../src/routes/browser-guard.js'
import { DEMO_TOKEN, startStack, type Stack } from '../helpers.js'
import { send } from './raw-http.js'

type ErrorBody = { error: { status_code: number; code: string; message: string } }

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

describe('default deployment (HOST=127.0.0.1, no client keys): browsers are refused', () => {
  let s: Stack
  let host: string
  beforeAll(async () => {
    s = await startStack({ env: { ADMIN_KEY: 'adm-1' } })
    host = `127.0.0.1:${s.port}`
  })
  afterAll(() => s.close())

  it('a cross-site HTML form POST (Origin evil, Sec-Fetch-Site cross-site) -> 403 CROSS_SITE_REFUSED, nothing sent upstream', async () => {
    const before = s.sim.calls.length
    const r = await send(s.port, {
      method: 'POST',
      path: '/api/v3/jobs',
      headers: { host, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', ...FORM },
      body: 'name=pwned&customer_id=1',
    })
    expect(r.status).toBe(403)
    expect(r.json()).toMatchObject({ error: { status_code: 403, code: 'CROSS_SITE_REFUSED' } })
    expect(r.headers['access-control-allow-origin']).toBeUndefined()
    expect(s.sim.calls.length).toBe(before)
  })

  it('an older browser (Origin only) and a no-cors GET (Sec-Fetch-Site only) are refused too', async () => {
    const before = s.sim.calls.length
    const post = await send(s.port, { method: 'POST', path: '/api/v3/jobs/1/notes', headers: { host, origin: 'https://evil.example', ...FORM }, body: 'note=x' })
    expect(post.status).toBe(403)
    expect((post.json() as ErrorBody).error.code).toBe('CROSS_SITE_REFUSED')
    const get = await send(s.port, { path: '/api/v3/jobs/1', headers: { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' } })
    expect(get.status).toBe(403)
    const nullOrigin = await send(s.port, { method: 'PUT', path: '/api/v3/jobs/1', headers: { host, origin: 'null', 'content-type': 'text/plain' }, body: '{}' })
    expect(nullOrigin.status).toBe(403)
    expect(s.sim.calls.length).toBe(before)
  })

  it('the admin purge and the status are refused cross-site, even with the right key', async () => {
    await send(s.port, { path: '/api/v3/jobs/2', headers: { host } })
    const purge = await send(s.port, { method: 'DELETE', path: '/_proxy/cache', headers: { host, origin: 'https://evil.example', authorization: 'Bearer adm-1' } })
    expect(purge.status).toBe(403)
    expect((purge.json() as ErrorBody).error.code).toBe('CROSS_SITE_REFUSED')
    expect((await send(s.port, { path: '/api/v3/jobs/2', headers: { host } })).headers['x-cache']).toBe('HIT')
    const status = await send(s.port, { path: '/_proxy/status', headers: { host, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' } })
    expect(status.status).toBe(403)
  })

  it('a link to the dashboard from another site opens it (the page holds no data); its data calls stay same-origin', async () => {
    const page = await send(s.port, { path: '/_proxy/', headers: { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' } })
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toMatch(/text\/html/)
    const own = await send(s.port, { path: '/_proxy/status', headers: { host, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' } })
    expect(own.status).toBe(200)
  })

  it('DNS rebinding: a foreign Host -> 421 HOST_NOT_ALLOWED on /api/v3 and /_proxy, nothing sent upstream', async () => {
    const before = s.sim.calls.length
    for (const [method, path] of [
      ['GET', '/api/v3/jobs/3'],
      ['POST', '/api/v3/jobs'],
      ['GET', '/_proxy/status'],
      ['GET', '/_proxy/'],
      ['DELETE', '/_proxy/cache'],
    ] as const) {
      // same-origin as far as the browser knows: rebind.evil.example now resolves to 127.0.0.1
      const r = await send(s.port, {
        method,
        path,
        headers: {
          host: `rebind.evil.example:${s.port}`,
          origin: `http://rebind.evil.example:${s.port}`,
          'sec-fetch-site': 'same-origin',
          'content-type': 'application/json',
          authorization: 'Bearer adm-1',
        },
        body: method === 'POST' ? '{"name":"x"}' : undefined,
      })
      expect(r.status, `${method} ${path}`).toBe(421)
      expect(r.json()).toMatchObject({ error: { status_code: 421, code: 'HOST_NOT_ALLOWED' } })
    }
    expect(s.sim.calls.length).toBe(before)
  })

  it('the probes stay open to any Host (orchestrators call them by pod address)', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const r = await send(s.port, { path, headers: { host: '10.1.2.3:8080' } })
      expect(r.status, path).toBe(200)
    }
  })

  it('loopback names are accepted, with or without a port, and same-origin or loopback Origins', async () => {
    for (const h of [host, `localhost:${s.port}`, 'localhost', `LOCALHOST.:${s.port}`, `[::1]:${s.port}`, `127.1.2.3:${s.port}`, `app.localhost:${s.port}`]) {
      const r = await send(s.port, { path: '/api/v3/jobs/4', headers: { host: h } })
      expect(r.status, h).toBe(200)
    }
    const sameOrigin = await send(s.port, {
      method: 'POST',
      path: '/api/v3/jobs/4/notes',
      headers: { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
      body: '{"note":"from the same origin"}',
    })
    expect(sameOrigin.status).toBe(200)
    const localTool = await send(s.port, { method: 'POST', path: '/api/v3/jobs/4/notes', headers: { host, origin: 'http://localhost:3000', 'content-type': 'application/json' }, body: '{"note":"x"}' })
    expect(localTool.status).toBe(200)
  })

  it('a CORS preflight is never forwarded nor answered positively: 403 CROSS_SITE_REFUSED', async () => {
    const before = s.sim.calls.length
    for (const origin of ['https://evil.example', `http://${host}`]) {
      const r = await send(s.port, {
        method: 'OPTIONS',
        path: '/api/v3/jobs',
        headers: { host, origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      })
      expect(r.status).toBe(403)
      expect((r.json() as ErrorBody).error.code).toBe('CROSS_SITE_REFUSED')
      expect(Object.keys(r.headers).filter((h) => h.startsWith('access-control-'))).toEqual([])
    }
    expect(s.sim.calls.length).toBe(before)
  })

  it('upstream Access-Control-* headers never reach a client: cached answers, hits, and pass-through writes', async () => {
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x-secret' }
    s.sim.inject({ kind: 'headers', method: 'GET', path: '/jobs/5', headers: cors })
    s.sim.inject({ kind: 'headers', method: 'POST', path: '/jobs/5/notes', headers: cors })
    const miss = await send(s.port, { path: '/api/v3/jobs/5', headers: { host } })
    const hit = await send(s.port, { path: '/api/v3/jobs/5', headers: { host } })
    const write = await send(s.port, { method: 'POST', path: '/api/v3/jobs/5/notes', headers: { host, 'content-type': 'application/json' }, body: '{"note":"n"}' })
    // the simulator did send them
    s.sim.inject({ kind: 'headers', method: 'GET', path: '/jobs/5', headers: cors })
    const direct = await fetch(`${s.sim.url}/jobs/5`, { headers: { authorization: `Bearer ${DEMO_TOKEN}` } })
    expect(direct.headers.get('access-control-allow-origin')).toBe('*')
    expect(hit.headers['x-cache']).toBe('HIT')
    for (const r of [miss, hit, write]) {
      expect(r.status).toBe(200)
      expect(Object.keys(r.headers).filter((h) => h.startsWith('access-control-'))).toEqual([])
    }
  })
})

describe('ALLOWED_HOSTS, PUBLIC_URL and a non-loopback HOST', () => {
  let s: Stack | undefined
  afterAll(() => s?.close())

  it("loopback HOST + ALLOWED_HOSTS: the listed names (and *.suffix) and PUBLIC_URL's host are accepted, others 421", async () => {
    s = await startStack({ env: { ALLOWED_HOSTS: 'jp-proxy, *.svc.internal', PUBLIC_URL: 'https://jp.example.com/gw' } })
    const status = async (h: string) => (await send(s!.port, { path: '/api/v3/jobs/6', headers: { host: h } })).status
    expect(await status('jp-proxy:8080')).toBe(200)
    expect(await status('JP-PROXY')).toBe(200)
    expect(await status('proxy.ns.svc.internal:8080')).toBe(200)
    expect(await status('jp.example.com')).toBe(200)
    expect(await status('svc.internal.evil.example')).toBe(421)
    expect(await status('jp-proxy.evil.example')).toBe(421)
    expect(await status('evil.example')).toBe(421)
    await s.close()
    s = undefined
  })

  it('non-loopback HOST and no ALLOWED_HOSTS: any Host (SPEC), but cross-site requests are still refused', async () => {
    s = await startStack({ env: { HOST: '0.0.0.0' } })
    const before = s.sim.calls.length
    expect((await send(s.port, { path: '/api/v3/jobs/7', headers: { host: 'proxy:8080' } })).status).toBe(200)
    expect((await send(s.port, { path: '/api/v3/jobs/7', headers: { host: '10.0.0.5:8080' } })).status).toBe(200)
    const csrf = await send(s.port, { method: 'POST', path: '/api/v3/jobs', headers: { host: 'proxy:8080', origin: 'https://evil.example', ...FORM }, body: 'name=x' })
    expect(csrf.status).toBe(403)
    expect(s.sim.calls.length).toBe(before + 1)
    await s.close()
    s = undefined
  })

  it('non-loopback HOST with ALLOWED_HOSTS: only those, loopback and the HOST address', async () => {
    s = await startStack({ env: { HOST: '10.9.8.7', ALLOWED_HOSTS: 'proxy' } })
    const status = async (h: string) => (await send(s!.port, { path: '/api/v3/jobs/8', headers: { host: h } })).status
    expect(await status('proxy:8080')).toBe(200)
    expect(await status('10.9.8.7:8080')).toBe(200)
    expect(await status('127.0.0.1')).toBe(200)
    expect(await status('other:8080')).toBe(421)
    await s.close()
    s = undefined
  })

  it('refuses malformed settings with one line naming the variable', () => {
    const bad: Array<Record<string, string>> = [
      { ALLOWED_HOSTS: 'http://proxy' },
      { ALLOWED_HOSTS: 'proxy:8080' },
      { ALLOWED_HOSTS: 'proxy/x' },
      { PUBLIC_URL: 'ftp://jp.example.com' },
      { PUBLIC_URL: 'https://jp.example.com/api/v3' },
      { PUBLIC_URL: 'https://jp.example.com/?x=1' },
    ]
    for (const env of bad) {
      const name = Object.keys(env)[0]!
      expect(() => loadConfig({ JOBPROGRESS_TOKEN: DEMO_TOKEN, ...env }), JSON.stringify(env)).toThrow(ConfigError)
      expect(() => loadConfig({ JOBPROGRESS_TOKEN: DEMO_TOKEN, ...env })).toThrow(new RegExp(`^${name}:`))
    }
    const ok = loadConfig({ JOBPROGRESS_TOKEN: DEMO_TOKEN, ALLOWED_HOSTS: ' Proxy , *.Internal,[fd00::5] ', PUBLIC_URL: 'https://jp.example.com/gw/' }).config
    expect(ok.allowedHosts).toEqual(['proxy', '*.internal', '[fd00::5]'])
    expect(ok.publicUrl).toBe('https://jp.example.com/gw')
  })

  it('the policy by itself: IPv6 HOST, bracketed names, Origins', () => {
    const p = new HostPolicy({ host: '::1', allowedHosts: ['[fd00::5]'], publicUrl: undefined })
    expect(p.anyHost).toBe(false)
    expect(p.hostAllowed('[::1]:8080')).toBe(true)
    expect(p.hostAllowed('[fd00::5]:8080')).toBe(true)
    expect(p.hostAllowed('[fd00::6]:8080')).toBe(false)
    expect(p.originAllowed('http://[fd00::5]:3000', '[::1]:8080')).toBe(true)
    expect(p.originAllowed('https://evil.example', '[::1]:8080')).toBe(false)
    expect(p.originAllowed('not a url', '[::1]:8080')).toBe(false)
  })
})
