import { afterEach, describe, expect, it } from 'vitest'
import { Throttle, type CallClass } from '../../src/upstream/throttle.js'
import { startStack, until, type Stack } from '../helpers.js'

describe('overload: 503 with Retry-After, never a 429', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('past QUEUE_MAX waiting calls -> 503 QUEUE_FULL with Retry-After', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '1', QUEUE_MAX: '2', QUEUE_TIMEOUT_MS: '3000' } })
    expect((await fetch(`${s.url}/api/v3/jobs/1`)).status).toBe(200)
    const waiting = [2, 3].map((id) => fetch(`${s!.url}/api/v3/jobs/${id}`))
    await until(() => s!.app.upstream.throttle.depth === 2)
    const full = await fetch(`${s.url}/api/v3/jobs/4`)
    expect(full.status).toBe(503)
    expect(Number(full.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await full.json()).toMatchObject({ error: { status_code: 503, code: 'QUEUE_FULL' } })
    const late = await Promise.all(waiting)
    expect(late.map((r) => r.status)).toEqual([503, 503])
    expect(await late[0]!.json()).toMatchObject({ error: { code: 'QUEUE_TIMEOUT' } })
    expect(late[0]!.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(s.sim.calls).toHaveLength(1)
    const metrics = await (await fetch(`${s.url}/metrics`)).text()
    expect(metrics).not.toMatch(/status="429"/)
  })

  it('a client never receives a 429, even when JobProgress sends them', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '100', UPSTREAM_RATE_WINDOW_MS: '1000' }, sim: { rateLimit: 4, rateWindowMs: 1000, throttleMode: 'bare' } })
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => fetch(`${s!.url}/api/v3/customers/${i + 1}`)))
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200))
    expect(s.sim.throttled).toBeGreaterThan(0) // the proxy was told to over-spend: JobProgress said no, the clients never saw it
  })
})

describe('fairness and priority', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it("a single call from client B is not stuck behind client A's flood", async () => {
    s = await startStack({
      env: { PROXY_API_KEYS: 'a:key-a,b:key-b', UPSTREAM_RATE_LIMIT: '2', UPSTREAM_RATE_WINDOW_MS: '300', QUEUE_TIMEOUT_MS: '20000' },
      sim: { rateLimit: 100 },
    })
    const flood = Array.from({ length: 30 }, (_, i) => fetch(`${s!.url}/api/v3/jobs/${i + 1}`, { headers: { 'x-proxy-key': 'key-a' } }))
    await until(() => s!.app.upstream.throttle.depth >= 20)
    const sentBefore = s.sim.calls.length
    const b = await fetch(`${s.url}/api/v3/customers/1`, { headers: { 'x-proxy-key': 'key-b' } })
    expect(b.status).toBe(200)
    const position = s.sim.calls.findIndex((c) => c.path === '/customers/1')
    expect(position - sentBefore).toBeLessThanOrEqual(2) // about two budget slots, not behind 20+ calls
    await Promise.all(flood)
  })

  it('order: retries, then writes, then reads, then background refreshes; round-robin between clients', async () => {
    const t = new Throttle({ limit: 1, windowMs: 60_000, maxConcurrent: 1, queueMax: 100, queueTimeoutMs: 10_000 })
    const order: string[] = []
    const run = (client: string, cls: CallClass, name: string) =>
      t.run({ client, cls }, async () => {
        order.push(name)
        return { value: name }
      })
    const first = run('x', 'read', 'first') // takes the only slot
    await first
    // first queued call is handed to the limiter at once; the rest wait in our queue
    const all = [
      run('a', 'read', 'handed'),
      run('a', 'background', 'bg'),
      run('a', 'read', 'a1'),
      run('a', 'read', 'a2'),
      run('a', 'read', 'a3'),
      run('b', 'read', 'b1'),
      run('c', 'write', 'w1'),
      run('d', 'retry', 'r1'),
    ]
    await new Promise((r) => setTimeout(r, 20))
    // give slots back one at a time and watch what goes next
    for (let i = 0; i < all.length; i++) {
      await t.limiter.incrementReservoir(1)
      await until(() => order.length === i + 2)
    }
    await Promise.all(all)
    expect(order).toEqual(['first', 'handed', 'r1', 'w1', 'a1', 'b1', 'a2', 'a3', 'bg'])
    await t.close()
  })
})
