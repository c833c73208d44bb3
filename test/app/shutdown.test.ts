import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createSimulator, DEMO_TOKEN } from '../../simulator/app.js'
import { rawGet, startStack, until } from '../helpers.js'

const TSX = join(process.cwd(), 'node_modules/.bin/tsx')

describe('graceful shutdown', () => {
  it('on SIGTERM finishes the request in flight, then exits 0', async () => {
    const sim = createSimulator()
    const simUrl = await sim.listen()
    sim.inject({ kind: 'delay', path: '/jobs/5', ms: 800 })
    const child = spawn(TSX, ['src/server.ts'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CACHE_DIR: '', JOBPROGRESS_TOKEN: DEMO_TOKEN, JOBPROGRESS_API_URL: simUrl, PORT: '0', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += String(d)))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    try {
      await until(() => /"address":"http:\/\/127\.0\.0\.1:\d+"/.test(out), 10_000)
      const base = /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)![1]
      const inflight = fetch(`${base}/api/v3/jobs/5`)
      await until(() => sim.count('/jobs/5') === 1)
      const t0 = Date.now()
      child.kill('SIGTERM')
      const res = await inflight
      expect(res.status).toBe(200)
      expect(((await res.json()) as { data: { id: number } }).data.id).toBe(5)
      expect(await exited).toBe(0)
      expect(Date.now() - t0).toBeLessThan(10_000)
      expect(out).toMatch(/shutting down/)
    } finally {
      child.kill('SIGKILL')
      await sim.close()
    }
  })

  it('/readyz answers 503 at once; API calls are served during SHUTDOWN_DELAY_MS, then calls still queued get 503 SHUTTING_DOWN', async () => {
    const s = await startStack({ env: { SHUTDOWN_DELAY_MS: '400', UPSTREAM_RATE_LIMIT: '1', UPSTREAM_RATE_WINDOW_MS: '60000' } })
    try {
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200)
      expect((await fetch(`${s.url}/api/v3/jobs/1`)).status).toBe(200) // spends the only slot
      const queued = fetch(`${s.url}/api/v3/jobs/2`)
      await until(() => s.app.upstream.throttle.depth === 1)
      const closing = s.app.close()
      await until(() => !s.app.proxyState.ready)
      const ready = await fetch(`${s.url}/readyz`)
      expect(ready.status).toBe(503)
      const cached = await fetch(`${s.url}/api/v3/jobs/1`) // still served while draining
      expect(cached.status).toBe(200)
      expect(cached.headers.get('x-cache')).toBe('HIT')
      // and ends its connection, so that keep-alive clients move to another replica before the end
      const raw = await rawGet(s.port, '/api/v3/jobs/1', { connection: 'keep-alive' })
      expect(raw.headers['x-cache']).toBe('HIT')
      expect(raw.headers.connection).toBe('close')
      const res = await queued
      expect(res.status).toBe(503)
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/)
      expect(await res.json()).toMatchObject({ error: { status_code: 503, code: 'SHUTTING_DOWN' } })
      expect(s.sim.count('/jobs/2')).toBe(0)
      await closing
    } finally {
      await s.sim.close()
    }
  })
})
