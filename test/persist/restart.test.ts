// Restarts of a real process: SIGTERM loses nothing, SIGKILL at most the last seconds, an eviction
// made before a restart stays made, and the budget spent before a restart still counts after it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimulator, type Simulator } from '../../simulator/app.js'
import { sleep } from '../helpers.js'
import { get, startChild, tempDir } from './fixtures.js'

describe('a restart (real process, CACHE_DIR)', () => {
  let sim: Simulator
  let simUrl: string
  beforeAll(async () => {
    sim = createSimulator({ rateLimit: 1000, rateWindowMs: 60_000 })
    simUrl = await sim.listen()
  })
  afterAll(() => sim.close())

  it('SIGTERM: entries are hits afterwards with their true Age; a write evicted before stays evicted', async () => {
    const dir = tempDir()
    const env = { JOBPROGRESS_API_URL: simUrl, CACHE_DIR: dir, CACHE_TTL_SECONDS: '60' }
    let p = await startChild(env)
    const paths = ['/jobs/11', '/jobs/12', '/customers?limit=2', '/jobs?limit=3&includes[]=customer']
    for (const path of paths) expect((await get(p.url, path)).cache).toBe('MISS')
    // (pagination links point at the proxy the client used: its port changes with the restart)
    const body = (base: string, text: string) => text.replaceAll(new URL(base).host, 'PROXY')
    const before = Object.fromEntries(await Promise.all(paths.map(async (path) => [path, body(p.url, (await get(p.url, path)).body)])))
    await sleep(2100)
    const w = await fetch(`${p.url}/api/v3/jobs/12`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"renamed"}' })
    expect(w.status).toBe(200)
    expect(await p.stop('SIGTERM')).toBe(0)
    const calls = sim.calls.length

    p = await startChild(env)
    try {
      for (const path of ['/jobs/11', '/customers?limit=2', '/jobs?limit=3&includes[]=customer']) {
        if (path.startsWith('/jobs?')) continue // the PUT evicted the /jobs listing too (its ancestor)
        const r = await get(p.url, path)
        expect(r.cache, path).toBe('HIT')
        expect(r.age, path).toBeGreaterThanOrEqual(2)
        expect(body(p.url, r.body)).toBe(before[path])
      }
      expect(sim.calls.length).toBe(calls) // no upstream call for those
      // the entry from before the PUT never comes back: /jobs/12 holds the write's own answer (write refresh)
      const j12 = await get(p.url, '/jobs/12')
      expect((JSON.parse(j12.body) as { data: { name: string } }).data.name).toBe('renamed')
      expect((await get(p.url, '/jobs?limit=3&includes[]=customer')).cache).toBe('MISS')
      expect(p.logs.some((l) => l.includes('cache loaded from CACHE_DIR') && l.includes('"entries":3'))).toBe(true)
    } finally {
      await p.stop()
    }
  })

  it('SIGKILL: entries older than the flush interval survive; an eviction answered just before the kill stays', async () => {
    const dir = tempDir()
    const env = { JOBPROGRESS_API_URL: simUrl, CACHE_DIR: dir }
    let p = await startChild(env)
    for (const path of ['/jobs/21', '/jobs/22', '/customers/5']) expect((await get(p.url, path)).cache).toBe('MISS')
    await sleep(1600) // past the one-second flush: on disk
    const w = await fetch(`${p.url}/api/v3/jobs/22`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' })
    expect(w.status).toBe(200)
    await p.stop('SIGKILL') // at once: no flush, no shutdown
    p = await startChild(env)
    try {
      expect((await get(p.url, '/jobs/21')).cache).toBe('HIT')
      expect((await get(p.url, '/customers/5')).cache).toBe('HIT')
      expect((await get(p.url, '/jobs/22')).cache).toBe('MISS')
    } finally {
      await p.stop()
    }
  })

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`${signal} inside a spent window: no call goes out before the window allows it (0 upstream 429s)`, async () => {
      const window = 4000
      const tight = createSimulator({ rateLimit: 5, rateWindowMs: window })
      const url = await tight.listen()
      const env = { JOBPROGRESS_API_URL: url, CACHE_DIR: tempDir(), UPSTREAM_RATE_LIMIT: '5', UPSTREAM_RATE_WINDOW_MS: String(window), QUEUE_TIMEOUT_MS: '20000' }
      try {
        let p = await startChild(env)
        await Promise.all([1, 2, 3, 4, 5].map((i) => get(p.url, `/jobs/${i}`)))
        const firstAnswers = tight.calls.map((c) => c.finishedAt ?? c.time)
        expect(tight.calls.length).toBe(5)
        await sleep(100)
        await p.stop(signal)
        p = await startChild(env)
        const restartedAt = Date.now()
        try {
          const rs = await Promise.all([6, 7, 8, 9, 10].map((i) => get(p.url, `/jobs/${i}`)))
          expect(rs.map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
          expect(tight.throttled).toBe(0)
          const later = tight.calls
            .slice(5)
            .map((c) => c.time)
            .sort((a, b) => a - b)
          expect(later.length).toBe(5)
          // the sliding window: the k-th new call no earlier than one window after the k-th old answer
          const old = [...firstAnswers].sort((a, b) => a - b)
          for (let k = 0; k < 5; k++) expect(later[k]! - old[k]!).toBeGreaterThanOrEqual(window - 50)
          // (a machine so busy that the restart took longer than the window has nothing left to restore)
          if (restartedAt < Math.max(...old) + window - 200) expect(p.logs.some((l) => l.includes('budget restored from CACHE_DIR'))).toBe(true)
        } finally {
          await p.stop()
        }
      } finally {
        await tight.close()
      }
    })
  }
})
