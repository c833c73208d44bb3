import { describe, expect, it } from 'vitest'
import { startStack } from '../helpers.js'

describe('DELETE /_proxy/cache and /_proxy/status', () => {
  it('403 ADMIN_DISABLED without ADMIN_KEY', async () => {
    const s = await startStack()
    try {
      const r = await fetch(`${s.url}/_proxy/cache`, { method: 'DELETE', headers: { authorization: 'Bearer anything' } })
      expect(r.status).toBe(403)
      expect(await r.json()).toMatchObject({ error: { status_code: 403, code: 'ADMIN_DISABLED' } })
    } finally {
      await s.close()
    }
  })

  it('403 ADMIN_KEY_INVALID with a wrong or missing key; purges all, or one prefix, with the key', async () => {
    const s = await startStack({ env: { ADMIN_KEY: 'adm-1' } })
    const get = (p: string) => fetch(`${s.url}/api/v3${p}`).then((r) => r.headers.get('x-cache'))
    const purge = (q: string, key?: string) => fetch(`${s.url}/_proxy/cache${q}`, { method: 'DELETE', headers: key ? { authorization: `Bearer ${key}` } : {} })
    try {
      for (const p of ['/jobs/1', '/jobs?limit=2', '/jobs/1/notes', '/jobsite', '/customers/1']) await get(p)
      for (const key of [undefined, 'nope']) {
        const r = await purge('', key)
        expect(r.status).toBe(403)
        expect(await r.json()).toMatchObject({ error: { code: 'ADMIN_KEY_INVALID' } })
      }
      expect(await get('/jobs/1')).toBe('HIT')
      const one = await purge('?prefix=/jobs', 'adm-1')
      expect(one.status).toBe(200)
      expect(await one.json()).toEqual({ purged: 3, prefix: '/jobs' })
      expect(await get('/jobs/1')).toBe('MISS')
      expect(await get('/jobsite')).toBe('MISS') // not a cached path before: 404 answers are not stored
      expect(await get('/customers/1')).toBe('HIT')
      const all = await purge('', 'adm-1')
      expect(((await all.json()) as { purged: number }).purged).toBeGreaterThan(0)
      expect(await get('/customers/1')).toBe('MISS')

      const status = (await (await fetch(`${s.url}/_proxy/status`)).json()) as { cache: Record<string, number> }
      expect(status.cache).toMatchObject({ entries: expect.any(Number), bytes: expect.any(Number), max_bytes: 67108864 })
      expect(status.cache.hits).toBeGreaterThanOrEqual(2)
      expect(status.cache.misses).toBeGreaterThanOrEqual(5)
      expect(status.cache).toHaveProperty('stale')
      expect(status.cache).toHaveProperty('bypass')
    } finally {
      await s.close()
    }
  })
})
