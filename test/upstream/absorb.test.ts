import { afterEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers.js'
import { earlyInWindow } from './window.js'

describe('absorbing the upstream throttle: the client gets the real answer', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('budget eaten by another program, 429 without Retry-After: paused one window, retried, 200', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '5', UPSTREAM_RATE_WINDOW_MS: '1000' }, sim: { rateLimit: 5, rateWindowMs: 1000, throttleMode: 'bare' } })
    await earlyInWindow(1000)
    s.sim.spend(5)
    const res = await fetch(`${s.url}/api/v3/jobs/1`)
    expect(res.status).toBe(200)
    expect(((await res.json()) as { data: { id: number } }).data.id).toBe(1)
    const calls = s.sim.calls.filter((c) => c.path === '/jobs/1')
    expect(calls.length).toBeGreaterThanOrEqual(2)
    expect(calls[0]!.status).toBe(429)
    expect(calls.at(-1)!.status).toBe(200)
    expect(calls[1]!.time - calls[0]!.time).toBeGreaterThanOrEqual(900) // one window, not 2 ms
    const status = (await (await fetch(`${s.url}/_proxy/status`)).json()) as { upstream: { throttled: number } }
    expect(status.upstream.throttled).toBe(calls.length - 1)
    expect(s.logs.some((l) => l.includes('upstream throttled a call (absorbed)'))).toBe(true)
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).toMatch(/^jobprogress_proxy_upstream_throttled_total [1-9]/m)
  })

  it('Retry-After is honoured in seconds, and the whole limiter pauses', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '50', UPSTREAM_RATE_WINDOW_MS: '60000' }, sim: { rateLimit: 3, rateWindowMs: 2000, throttleMode: 'retry-after' } })
    await earlyInWindow(2000)
    s.sim.spend(3)
    const answers = await Promise.all([1, 2, 3].map((id) => fetch(`${s!.url}/api/v3/jobs/${id}`)))
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200])
    const first429 = s.sim.calls.find((c) => c.status === 429)!
    const after = s.sim.calls.filter((c) => c.time > first429.time && c.status === 200)
    expect(after.length).toBe(3)
    // nothing was sent between the first 429 and the pause's end (Retry-After seconds, >= 1 s)
    const retryAfterSeconds = 1
    for (const c of after) expect(c.time - first429.time).toBeGreaterThanOrEqual(retryAfterSeconds * 1000 - 50)
    expect(s.sim.calls.filter((c) => c.status === 429).length).toBeLessThanOrEqual(3)
  })

  it('the legacy 500 "Too Many Attempts." is a throttle too: retried, 200', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '5', UPSTREAM_RATE_WINDOW_MS: '1000' }, sim: { rateLimit: 5, rateWindowMs: 1000, throttleMode: 'legacy500' } })
    await earlyInWindow(1000)
    s.sim.spend(5)
    const res = await fetch(`${s.url}/api/v3/customers/2`)
    expect(res.status).toBe(200)
    expect(s.sim.calls.filter((c) => c.path === '/customers/2').map((c) => c.status)).toContain(500)
  })

  it('a write throttled with 429 is resent with the same body (it was not processed)', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '5', UPSTREAM_RATE_WINDOW_MS: '1000' }, sim: { rateLimit: 5, rateWindowMs: 1000, throttleMode: 'bare' } })
    await earlyInWindow(1000)
    s.sim.spend(5)
    const body = JSON.stringify({ customer_id: 4, name: 'Throttled write' })
    const res = await fetch(`${s.url}/api/v3/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ job: { name: 'Throttled write' } })
    const posts = s.sim.calls.filter((c) => c.method === 'POST')
    expect(posts[0]!.status).toBe(429)
    expect(posts.at(-1)!.body).toBe(body)
    expect(s.sim.data.jobs.filter((j) => j.name === 'Throttled write')).toHaveLength(1)
  })

  it('a write reset after it was sent is not resent: 502 saying the outcome is unknown', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'reset', method: 'PUT', path: '/jobs/3' })
    const res = await fetch(`${s.url}/api/v3/jobs/3`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"r"}' })
    expect(res.status).toBe(502)
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/may or may not have been applied/)
    expect(s.sim.count('/jobs/3', 'PUT')).toBe(1)
  })

  it('X-RateLimit-Remaining lower than our estimate (another program) lowers what we send', async () => {
    // a long window so that it does not roll over during the test
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '6', UPSTREAM_RATE_WINDOW_MS: '4000', QUEUE_TIMEOUT_MS: '1500' }, sim: { rateLimit: 6, rateWindowMs: 4000, throttleMode: 'bare' } })
    await earlyInWindow(4000)
    s.sim.spend(3) // another program used half of the window
    expect((await fetch(`${s.url}/api/v3/jobs/1`)).status).toBe(200) // remaining: 2
    const burst = await Promise.all([2, 3, 4, 5].map((id) => fetch(`${s!.url}/api/v3/jobs/${id}`)))
    const statuses = burst.map((r) => r.status)
    expect(statuses.filter((x) => x === 200)).toHaveLength(2)
    expect(statuses.filter((x) => x === 503)).toHaveLength(2) // waited past QUEUE_TIMEOUT_MS for the next window
    expect(s.sim.throttled).toBe(0) // no 429 provoked: we believed the upstream
  })
})
