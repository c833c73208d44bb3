// Issue 11.8: one client cannot fill the queue for everyone. A full queue makes room for a client
// holding fewer waiting calls by sending the largest holder's newest call away (503 QUEUE_FULL).
import { afterEach, describe, expect, it } from 'vitest'
import { Throttle } from '../../src/upstream/throttle.js'
import { startStack, until, type Stack } from '../helpers.js'

describe("each client's share of the queue", () => {
  let s: Stack | undefined
  let t: Throttle | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
    await t?.close()
    t = undefined
  })

  it("a newcomer is queued when one client filled the queue; the flooder's newest call makes room", async () => {
    t = new Throttle({ limit: 1, windowMs: 60_000, maxConcurrent: 1, queueMax: 6, queueTimeoutMs: 30_000 })
    await t.run({ client: 'a', cls: 'read' }, async () => ({ value: 0 })) // spends the only slot
    const outcome = new Map<string, string>()
    const run = (client: string, name: string) =>
      t!
        .run({ client, cls: 'read' }, async () => ({ value: name }))
        .then(
          () => outcome.set(name, 'ran'),
          (err: { code?: string }) => outcome.set(name, err.code ?? 'error'),
        )
    const flood = Array.from({ length: 8 }, (_, i) => run('a', `a${i}`))
    await until(() => outcome.size >= 2)
    expect(t.depth).toBe(6)
    // a's 7th and 8th: a holds everything, so a itself is refused
    expect(outcome.get('a6')).toBe('QUEUE_FULL')
    expect(outcome.get('a7')).toBe('QUEUE_FULL')
    const b = run('b', 'b0')
    await until(() => outcome.has('a5'))
    expect(outcome.get('a5')).toBe('QUEUE_FULL') // a's newest waiting call left for b
    expect(outcome.has('b0')).toBe(false) // b waits in the queue
    expect(t.depth).toBe(6)
    // c and d come too: a keeps losing its newest until the shares are close
    void run('c', 'c0')
    void run('d', 'd0')
    await until(() => outcome.has('a4') && outcome.has('a3'))
    expect(outcome.get('a4')).toBe('QUEUE_FULL')
    expect(outcome.get('a3')).toBe('QUEUE_FULL')
    // b asks again: a holds 2 (one handed to the limiter is not in the queue), b holds 1: no room
    const before = t.stats.queueFull
    void run('b', 'b1')
    await until(() => outcome.has('b1') || t!.stats.queueFull > before)
    expect(outcome.get('b1')).toBe('QUEUE_FULL')
    void flood
    void b
    await t.close()
    t = undefined
  })

  it("through the proxy: 1 key floods, another key's first request is queued and answered", async () => {
    s = await startStack({
      env: { PROXY_API_KEYS: 'a:key-a,b:key-b', UPSTREAM_RATE_LIMIT: '2', UPSTREAM_RATE_WINDOW_MS: '400', QUEUE_MAX: '8', QUEUE_TIMEOUT_MS: '20000' },
      sim: { rateLimit: 100 },
    })
    const a = { 'x-proxy-key': 'key-a' }
    const flood = Array.from({ length: 30 }, (_, i) => fetch(`${s!.url}/api/v3/jobs/${i + 1}`, { headers: a }).then((r) => r.status))
    await until(() => s!.app.upstream.throttle.depth >= 8)
    const b = await fetch(`${s.url}/api/v3/customers/1`, { headers: { 'x-proxy-key': 'key-b' } })
    expect(b.status).toBe(200)
    const statuses = await Promise.all(flood)
    expect(statuses.filter((x) => x === 503).length).toBeGreaterThan(0) // the flooder, not b, was sent away
    expect(statuses.every((x) => x === 200 || x === 503)).toBe(true)
  })
})
