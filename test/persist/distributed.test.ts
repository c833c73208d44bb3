// CACHE_DIR with REDIS_URL: the budget lives in Redis (no budget file), each replica keeps its own
// entries on disk, and replicas restarting together refresh an expired entry once, not once each.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimulator, type Simulator } from '../../simulator/app.js'
import { hasRedis, startRedis, startReplica, type RedisServer, type Replica } from '../redis/fixtures.js'
import { sleep, until } from '../helpers.js'
import { tempDir } from './fixtures.js'

describe.skipIf(!hasRedis)('CACHE_DIR in distributed mode', () => {
  let sim: Simulator
  let redis: RedisServer
  beforeAll(async () => {
    sim = createSimulator({ rateLimit: 1000 })
    await sim.listen()
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis.stop()
    await sim.close()
  })

  it('no budget file (Redis holds the budget); after a joint restart an expired entry is refreshed once', async () => {
    const dirs = [tempDir(), tempDir()]
    const env = (dir: string) => ({ JOBPROGRESS_API_URL: sim.url, REDIS_URL: redis.url, CACHE_DIR: dir, CACHE_TTL_SECONDS: '4', CACHE_STALE_SECONDS: '600' })
    let replicas: Replica[] = await Promise.all(dirs.map((d) => startReplica(env(d))))
    try {
      expect((await fetch(`${replicas[0]!.url}/api/v3/jobs/11`)).headers.get('x-cache')).toBe('MISS')
      expect((await fetch(`${replicas[1]!.url}/api/v3/jobs/11`)).headers.get('x-cache')).toBe('HIT') // from the Redis tier
    } finally {
      await Promise.all(replicas.map((r) => r.kill('SIGTERM')))
    }
    for (const d of dirs) {
      expect(existsSync(join(d, 'cache.log'))).toBe(true)
      expect(existsSync(join(d, 'budget'))).toBe(false)
    }
    await sleep(4200) // the entry expires while both are down
    sim.reset()
    replicas = await Promise.all(dirs.map((d) => startReplica(env(d))))
    try {
      await until(() => sim.count('/jobs/11') >= 1, 5000)
      // the other replica takes the refreshed entry from the Redis tier (or waits on the fill lock): under
      // load that can take a while, so wait until both answer HIT (a STALE answer's refresh joins the lock too)
      const caches = async () => Promise.all(replicas.map(async (r) => (await fetch(`${r.url}/api/v3/jobs/11`)).headers.get('x-cache')))
      let seen = await caches()
      for (let i = 0; i < 40 && seen.some((c) => c !== 'HIT'); i++) {
        await sleep(250)
        seen = await caches()
      }
      expect(seen).toEqual(['HIT', 'HIT'])
      expect(sim.count('/jobs/11')).toBe(1)
    } finally {
      await Promise.all(replicas.map((r) => r.kill('SIGTERM')))
    }
  })
})
