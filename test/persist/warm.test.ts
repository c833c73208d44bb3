// Warm start: entries that expired while the proxy was down are served STALE and refreshed in the
// background, most-requested first, leaving a quarter of the budget to clients. And compaction keeps
// the file bounded without losing anything.
import { readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createSimulator, type Simulator } from '../../simulator/app.js'
import { sleep, until } from '../helpers.js'
import { get, startInProcess, tempDir } from './fixtures.js'

describe('warm start', () => {
  let sim: Simulator
  let simUrl: string
  let t: number
  const now = () => t
  beforeEach(async () => {
    t = Date.now()
    sim = createSimulator({ rateLimit: 1000 })
    simUrl = await sim.listen()
  })
  afterEach(() => sim.close())

  /** requests each path n times, then stops the proxy: the directory of a proxy that ran for a while */
  async function history(dir: string, counts: Record<string, number>, env: Record<string, string> = {}) {
    const p = await startInProcess(simUrl, { CACHE_DIR: dir, CACHE_TTL_SECONDS: '60', CACHE_STALE_SECONDS: '600', ...env }, now)
    for (const [path, n] of Object.entries(counts)) for (let i = 0; i < n; i++) expect((await get(p.url, path)).status).toBe(200)
    await p.close()
  }

  it('entries expired while down: STALE at once, then refreshed most-requested first, without a client asking', async () => {
    const dir = tempDir()
    await history(dir, { '/jobs/2': 1, '/jobs/1': 5, '/jobs/3': 3, '/customers/4': 2 })
    sim.reset()
    t += 120_000 // down for two minutes: past the TTL, within the stale window
    const p = await startInProcess(simUrl, { CACHE_DIR: dir, CACHE_TTL_SECONDS: '60', CACHE_STALE_SECONDS: '600' }, now)
    try {
      await until(() => sim.calls.length >= 4, 5000)
      expect(sim.calls.map((c) => c.path)).toEqual(['/jobs/1', '/jobs/3', '/customers/4', '/jobs/2'])
      await sleep(50)
      for (const path of ['/jobs/1', '/jobs/2']) {
        const r = await get(p.url, path)
        expect(r.cache).toBe('HIT')
        expect(r.age).toBe(0)
      }
      expect(sim.calls.length).toBe(4)
    } finally {
      await p.close()
    }
  })

  it('a client asking first gets STALE at once, and its refresh is the only call for that key', async () => {
    const dir = tempDir()
    await history(dir, { '/jobs/1': 1 })
    sim.reset()
    t += 120_000
    sim.inject({ kind: 'delay', ms: 300, path: '/jobs/1' })
    const p = await startInProcess(simUrl, { CACHE_DIR: dir }, now)
    try {
      const r = await get(p.url, '/jobs/1')
      expect(r.cache).toBe('STALE')
      expect(r.age).toBeGreaterThanOrEqual(120)
      await sleep(500)
      expect(sim.count('/jobs/1')).toBe(1)
    } finally {
      await p.close()
    }
  })

  it('spends only spare budget: stops with a quarter of the window left, and a client miss goes out at once', async () => {
    const dir = tempDir()
    await history(dir, { '/jobs/1': 1, '/jobs/2': 1, '/jobs/3': 1, '/jobs/4': 1, '/jobs/5': 1, '/jobs/6': 1 }, { UPSTREAM_RATE_LIMIT: '100' })
    rmSync(join(dir, 'budget')) // those 6 calls would count against the smaller budget below
    sim.reset()
    t += 120_000
    const p = await startInProcess(simUrl, { CACHE_DIR: dir, UPSTREAM_RATE_LIMIT: '4', UPSTREAM_RATE_WINDOW_MS: '60000' }, now)
    try {
      await until(() => sim.calls.length >= 3, 5000)
      await sleep(400)
      expect(sim.calls.length).toBe(3) // 4 - 3 = 1 slot left: a quarter of the budget, for clients
      const started = Date.now()
      expect((await get(p.url, '/customers/9')).cache).toBe('MISS')
      expect(Date.now() - started).toBeLessThan(1000)
    } finally {
      await p.close()
    }
  })

  it('compaction: a log full of replaced entries is rewritten smaller in the background, nothing lost', async () => {
    const dir = tempDir()
    const p = await startInProcess(simUrl, { CACHE_DIR: dir, CACHE_MAX_BYTES: String(2 * 1024 * 1024) }, now)
    const path = '/jobs?limit=100&includes[]=customer&includes[]=address'
    try {
      for (let i = 0; i < 14; i++) {
        expect((await get(p.url, path, { 'cache-control': 'no-cache' })).status).toBe(200) // replaces the entry: 110 KB dead each time
        await get(p.url, `/jobs/${i + 1}`)
      }
      await sleep(1200)
      await until(() => statSync(join(dir, 'cache.log')).size < 400_000, 5000)
      expect(p.logs.filter((l) => l.includes('"level":40'))).toEqual([])
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
    } finally {
      await p.close()
    }
    const again = await startInProcess(simUrl, { CACHE_DIR: dir, CACHE_MAX_BYTES: String(2 * 1024 * 1024) }, now)
    try {
      expect((await get(again.url, path)).cache).toBe('HIT')
      for (let i = 0; i < 14; i++) expect((await get(again.url, `/jobs/${i + 1}`)).cache).toBe('HIT')
    } finally {
      await again.close()
    }
  })
})
