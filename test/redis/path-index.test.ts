import { once } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Invalidation } from '../../src/cache/http-cache.js'
import { makeEntry, type Entry } from '../../src/cache/store.js'
import { Distributed } from '../../src/redis/distributed.js'
import { sleep, until } from '../helpers.js'
import { hasRedis, startRedis, type RedisServer } from './fixtures.js'

// The Redis tier's index of cached paths: bounded, and read in a fixed number of round trips.
describe.skipIf(!hasRedis)('the Redis tier path index', () => {
  let redis: RedisServer
  const open: Distributed[] = []
  const make = async (prefix: string, maxPaths?: number) => {
    const d = new Distributed({
      url: redis.url,
      prefix,
      budgetId: 'test',
      limit: 100,
      windowMs: 1000,
      maxConcurrent: 4,
      log: pino({ level: 'silent' }) as FastifyBaseLogger,
      maxPaths,
    })
    open.push(d)
    await once(d.redis, 'ready')
    return d
  }
  const entry = (key: string, ttlMs: number, includes: string[] = []): Entry =>
    makeEntry({
      key,
      path: key.split('?')[0]!,
      includes,
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(`{"data":"${key}"}`),
      storedAt: Date.now(),
      ttlMs,
      staleMs: 0,
    })

  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    for (const d of open) await d.close()
    await redis?.stop()
  })

  it('past maxPaths, the paths that expire soonest leave the index together with their entries', async () => {
    const d = await make('bound', 5)
    for (let i = 1; i <= 12; i++) await d.set(entry(`/jobs/${i}`, 60_000 + i * 1000))
    expect(await d.redis.zrange('bound:path-index', 0, -1)).toEqual(['/jobs/8', '/jobs/9', '/jobs/10', '/jobs/11', '/jobs/12'])
    for (let i = 1; i <= 7; i++) {
      expect(await d.get(`/jobs/${i}`)).toBeUndefined()
      expect(await d.redis.exists(`bound:p:/jobs/${i}`)).toBe(0)
    }
    for (let i = 8; i <= 12; i++) expect((await d.get(`/jobs/${i}`))?.body.toString()).toBe(`{"data":"/jobs/${i}"}`)
  })

  it('a path whose entries have all expired leaves the index at the next store', async () => {
    const d = await make('expiry')
    await d.set(entry('/short', 50))
    await d.set(entry('/long', 60_000))
    expect(await d.redis.zcard('expiry:path-index')).toBe(2)
    await sleep(120)
    await d.set(entry('/other', 60_000))
    expect(await d.redis.zrange('expiry:path-index', 0, -1)).toEqual(['/long', '/other'])
  })

  it('an invalidation deletes exactly the entries its filters reach, and tells the other replicas', async () => {
    const a = await make('inv')
    const b = await make('inv')
    const heard: Invalidation[] = []
    b.onInvalidation((inv) => heard.push(inv))
    await sleep(50) // b's subscription is in place
    const keys = ['/jobs/1', '/jobs/1?includes[]=customer', '/jobs/1/notes', '/jobs/2', '/jobs?limit=3', '/customers/1', '/customers/2?includes[]=jobs']
    for (const k of keys) await a.set(entry(k, 60_000, k.includes('includes[]=jobs') ? ['jobs'] : []))
    // PUT /jobs/1: the subtree and the ancestors; a link to customers whose includes hold "jobs"
    await a.invalidate({ op: 'write', path: '/jobs/1' }, [
      { match: (p) => p === '/jobs/1' || p.startsWith('/jobs/1/') || p === '/jobs' },
      { match: (p) => p.startsWith('/customers/'), includes: 'jobs' },
    ])
    const left = []
    for (const k of keys) if (await a.get(k)) left.push(k)
    expect(left).toEqual(['/jobs/2', '/customers/1'])
    await until(() => heard.length === 1)
    expect(heard[0]).toMatchObject({ op: 'write', path: '/jobs/1' })
  })
})
