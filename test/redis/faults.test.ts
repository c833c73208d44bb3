import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { createSimulator, type Simulator } from '../../simulator/app.js'
import { until } from '../helpers.js'
import { hasRedis, startRedis, startReplica, status, type RedisServer, type Replica } from './fixtures.js'

describe.skipIf(!hasRedis)('distributed mode under faults', () => {
  let redis: RedisServer | undefined
  let sim: Simulator | undefined
  let replicas: Replica[] = []
  afterEach(async () => {
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')))
    replicas = []
    await sim?.close()
    await redis?.stop()
  })

  it('Redis stopped: serves from the first tier and a local share of the budget, /readyz 503; recovers when Redis returns', async () => {
    redis = await startRedis()
    sim = createSimulator({ rateLimit: 1000 })
    const simUrl = await sim.listen()
    const a = await startReplica({ REDIS_URL: redis.url, JOBPROGRESS_API_URL: simUrl, UPSTREAM_RATE_LIMIT: '8', UPSTREAM_RATE_WINDOW_MS: '60000' })
    replicas.push(a)
    await fetch(`${a.url}/api/v3/jobs/41`)
    await redis.stop()
    await until(async () => (await fetch(`${a.url}/readyz`)).status === 503, 5000)
    expect(await (await fetch(`${a.url}/readyz`)).json()).toEqual({ status: 'degraded', redis: 'down' })
    expect((await status(a)).distributed).toEqual({ redis: 'down', budget: 'local' })
    // the first tier still answers, and misses still go out, within a quarter of the budget (2 of 8)
    expect((await fetch(`${a.url}/api/v3/jobs/41`)).headers.get('x-cache')).toBe('HIT')
    expect((await fetch(`${a.url}/api/v3/jobs/42`)).status).toBe(200)
    expect((await status(a)).upstream.budget_left).toBeLessThanOrEqual(1)
    expect(a.out()).toContain('Redis unavailable')

    await redis.start()
    await until(async () => (await fetch(`${a.url}/readyz`)).status === 200, 10_000)
    expect((await status(a)).distributed).toEqual({ redis: 'up', budget: 'shared' })
    expect((await fetch(`${a.url}/api/v3/jobs/43`)).status).toBe(200)
  }, 40_000)

  it('a replica SIGKILLed mid-window does not take its slots with it: they come back by time', async () => {
    redis = await startRedis()
    sim = createSimulator({ rateLimit: 1000 })
    const simUrl = await sim.listen()
    const env = { REDIS_URL: redis.url, JOBPROGRESS_API_URL: simUrl, UPSTREAM_RATE_LIMIT: '4', UPSTREAM_RATE_WINDOW_MS: '2000', QUEUE_TIMEOUT_MS: '20000' }
    const [a, b] = await Promise.all([startReplica(env), startReplica(env)])
    replicas.push(a, b)
    await Promise.all([1, 2, 3, 4].map((i) => fetch(`${a.url}/api/v3/jobs/${i}`)))
    expect((await status(b)).upstream.budget_left).toBe(0)
    await a.kill('SIGKILL')
    const t0 = Date.now()
    const res = await fetch(`${b.url}/api/v3/jobs/50`)
    const waited = Date.now() - t0
    expect(res.status).toBe(200)
    expect(waited).toBeGreaterThan(1000) // it had to wait for the window...
    expect(waited).toBeLessThan(6000) // ...and no longer: the dead replica's slots came back
  }, 40_000)

  it("Bottleneck's keys deleted under it (Redis 7): the shared limiter recovers", async () => {
    redis = await startRedis()
    sim = createSimulator({ rateLimit: 1000 })
    const simUrl = await sim.listen()
    const a = await startReplica({ REDIS_URL: redis.url, JOBPROGRESS_API_URL: simUrl, UPSTREAM_RATE_LIMIT: '50' })
    replicas.push(a)
    expect((await fetch(`${a.url}/api/v3/jobs/1`)).status).toBe(200)
    const client = new Redis(redis.url)
    const keys = await client.keys('b_jpp-budget-*')
    expect(keys.length).toBeGreaterThan(0)
    await client.del(...keys)
    await client.quit()
    for (const id of [2, 3, 4]) expect((await fetch(`${a.url}/api/v3/jobs/${id}`)).status).toBe(200)
    expect(sim.count(/^\/jobs\/[234]$/)).toBe(3)
  }, 40_000)

  it('replicas started with another UPSTREAM_RATE_LIMIT do not inherit the budget settings Redis kept', async () => {
    redis = await startRedis()
    sim = createSimulator({ rateLimit: 1000 })
    const simUrl = await sim.listen()
    const slow = await startReplica({ REDIS_URL: redis.url, JOBPROGRESS_API_URL: simUrl, UPSTREAM_RATE_LIMIT: '1', UPSTREAM_RATE_WINDOW_MS: '60000' })
    expect((await fetch(`${slow.url}/api/v3/jobs/1`)).status).toBe(200) // the only slot, for a minute
    await slow.kill('SIGKILL')
    const fast = await startReplica({ REDIS_URL: redis.url, JOBPROGRESS_API_URL: simUrl, UPSTREAM_RATE_LIMIT: '20', UPSTREAM_RATE_WINDOW_MS: '60000', QUEUE_TIMEOUT_MS: '2000' })
    replicas.push(fast)
    const answers = await Promise.all([2, 3, 4, 5, 6].map((id) => fetch(`${fast.url}/api/v3/jobs/${id}`)))
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
    expect((await status(fast)).upstream.budget_left).toBe(15)
  }, 40_000)
})
