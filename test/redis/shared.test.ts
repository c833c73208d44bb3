import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimulator, type Simulator } from '../../simulator/app.js'
import { until } from '../helpers.js'
import { maxInAnyWindow } from '../upstream/window.js'
import { hasRedis, startRedis, startReplica, status, type RedisServer, type Replica } from './fixtures.js'

describe.skipIf(!hasRedis)('two replicas, one Redis: one budget, one cache, one view of writes', () => {
  let redis: RedisServer
  let sim: Simulator
  let a: Replica
  let b: Replica
  beforeAll(async () => {
    redis = await startRedis()
    sim = createSimulator({ rateLimit: 5, rateWindowMs: 1000, throttleMode: 'retry-after' })
    const simUrl = await sim.listen()
    const env = { REDIS_URL: redis.url, JOBPROGRESS_API_URL: simUrl, UPSTREAM_RATE_LIMIT: '5', UPSTREAM_RATE_WINDOW_MS: '1000', QUEUE_TIMEOUT_MS: '20000' }
    ;[a, b] = await Promise.all([startReplica(env), startReplica(env)])
  }, 60_000)
  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()])
    await sim?.close()
    await redis?.stop()
  })

  it('both replicas report the shared budget and are ready', async () => {
    for (const r of [a, b]) {
      expect((await status(r)).distributed).toEqual({ redis: 'up', budget: 'shared' })
      const ready = await fetch(`${r.url}/readyz`)
      expect(ready.status).toBe(200)
      expect(await ready.json()).toEqual({ status: 'ready', redis: 'up' })
    }
  })

  it('combined over-demand: only 200s, no upstream 429, never more than the limit in any window', async () => {
    sim.reset()
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => fetch(`${(i % 2 ? a : b).url}/api/v3/jobs?limit=1&k=${i}`)))
    expect(answers.map((r) => r.status)).toEqual(Array(16).fill(200))
    expect(sim.throttled).toBe(0)
    expect(maxInAnyWindow(sim.calls, 1000)).toBeLessThanOrEqual(5)
  }, 30_000)

  it('a GET through A is a hit through B', async () => {
    sim.reset()
    // the same representation on both sides (entries are stored gzip; a miss answers identity)
    const identity = { headers: { 'accept-encoding': 'identity' } }
    const first = await fetch(`${a.url}/api/v3/jobs/31?includes[]=address`, identity)
    expect(first.headers.get('x-cache')).toBe('MISS')
    const second = await fetch(`${b.url}/api/v3/jobs/31?includes=address`, identity)
    expect(second.headers.get('x-cache')).toBe('HIT')
    expect(second.headers.get('etag')).toBe(first.headers.get('etag'))
    const text = await second.text()
    expect(text).toBe(await first.text())
    const gzip = await fetch(`${b.url}/api/v3/jobs/31?includes=address`, { headers: { 'accept-encoding': 'gzip' } })
    expect(gzip.headers.get('etag')).toBe(first.headers.get('etag')!.replace(/"$/, '-gz"'))
    expect(await gzip.text()).toBe(text)
    expect(sim.count('/jobs/31')).toBe(1)
  })

  it("a write through B evicts A's first tier and the Redis tier", async () => {
    sim.reset()
    await fetch(`${a.url}/api/v3/jobs/32`)
    expect((await fetch(`${a.url}/api/v3/jobs/32`)).headers.get('x-cache')).toBe('HIT')
    const put = await fetch(`${b.url}/api/v3/jobs/32`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"written through B"}' })
    expect(put.status).toBe(200)
    await until(async () => (await fetch(`${a.url}/api/v3/jobs/32`)).headers.get('x-cache') !== 'HIT', 2000, 5)
    const after = (await (await fetch(`${a.url}/api/v3/jobs/32`)).json()) as { data: { name: string } }
    expect(after.data.name).toBe('written through B')
  })

  it('a purge through A reaches B', async () => {
    await fetch(`${b.url}/api/v3/customers/7`)
    expect((await fetch(`${b.url}/api/v3/customers/7`)).headers.get('x-cache')).toBe('HIT')
    // admin is disabled (no ADMIN_KEY) in these replicas: evict through a write instead
    await fetch(`${a.url}/api/v3/customers/7`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"note":"x"}' })
    await until(async () => (await fetch(`${b.url}/api/v3/customers/7`)).headers.get('x-cache') !== 'HIT', 2000, 5)
  })

  it('two replicas missing the same key at once make one upstream call', async () => {
    sim.reset()
    sim.inject({ kind: 'delay', path: '/jobs/33', ms: 300 })
    const answers = await Promise.all([a, b, a, b].map((r) => fetch(`${r.url}/api/v3/jobs/33`)))
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200])
    expect(sim.count('/jobs/33')).toBe(1)
  })
})
