import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cacheKey, canonicalQuery } from '../../src/cache/key.js'
import { startStack, type Stack } from '../helpers.js'

describe('cache keys', () => {
  it('sort parameters by name, stable for repeated names, and normalise percent-encoding', () => {
    expect(canonicalQuery('?page=2&limit=10').query).toBe('limit=10&page=2')
    expect(canonicalQuery('b=2&a=1&b=1').query).toBe('a=1&b=2&b=1')
    expect(canonicalQuery('keyword=roof%20a').query).toBe(canonicalQuery('keyword=roof+a').query)
    expect(canonicalQuery('job_ids%5B%5D=1').query).toBe(canonicalQuery('job_ids[]=1').query)
  })

  it('read every includes form as one set, order and duplicates ignored', () => {
    const forms = [
      'includes[]=address&includes[]=customer',
      'includes[]=customer&includes[]=address&includes[]=address',
      'includes=customer,address',
      'includes%5B%5D=address&includes[0]=customer',
      'includes[1]=customer&includes[0]=address',
      'includes=address&includes[]=customer',
    ]
    const keys = new Set(forms.map((f) => canonicalQuery(f).query))
    expect(keys.size).toBe(1)
    expect([...keys][0]).toBe('includes%5B%5D=address&includes%5B%5D=customer')
  })

  it('keep different limits, pages and filters apart, and paths apart', () => {
    const k = (p: string, q: string) => cacheKey(p, q).key
    expect(k('/jobs', '?limit=10')).not.toBe(k('/jobs', '?limit=20'))
    expect(k('/jobs', '?page=1')).not.toBe(k('/jobs', '?page=2'))
    expect(k('/jobs', '?keyword=a')).not.toBe(k('/jobs', '?keyword=b'))
    expect(k('/jobs/1', '')).not.toBe(k('/jobs/11', ''))
    expect(k('/jobs', '?includes[]=a')).not.toBe(k('/jobs', '?includes[]=a,b'))
    expect(k('/jobs/%31', '')).toBe(k('/jobs/1', ''))
  })

  describe('through the proxy', () => {
    let s: Stack
    beforeAll(async () => {
      s = await startStack()
    })
    afterAll(() => s.close())

    it('one upstream call serves every includes form; another limit is another call', async () => {
      const urls = [
        '/api/v3/jobs/12?includes[]=address&includes[]=customer',
        '/api/v3/jobs/12?includes=customer,address',
        '/api/v3/jobs/12?includes%5B%5D=customer&includes[0]=address&includes[]=customer',
      ]
      const bodies = []
      for (const u of urls) {
        const r = await fetch(`${s.url}${u}`)
        bodies.push(await r.text())
      }
      expect(s.sim.count('/jobs/12')).toBe(1)
      expect(new Set(bodies).size).toBe(1)
      await fetch(`${s.url}/api/v3/jobs?limit=3`)
      await fetch(`${s.url}/api/v3/jobs?limit=4`)
      await fetch(`${s.url}/api/v3/jobs?limit=3`)
      expect(s.sim.count('/jobs')).toBe(2)
      const three = (await (await fetch(`${s.url}/api/v3/jobs?limit=3`)).json()) as { data: unknown[] }
      const four = (await (await fetch(`${s.url}/api/v3/jobs?limit=4`)).json()) as { data: unknown[] }
      expect(three.data).toHaveLength(3)
      expect(four.data).toHaveLength(4)
    })

    it('rejects malformed percent-encoding in the query with 400, nothing upstream', async () => {
      const before = s.sim.calls.length
      const r = await fetch(`${s.url}/api/v3/jobs?keyword=%zz`)
      expect(r.status).toBe(400)
      expect(await r.json()).toMatchObject({ error: { code: 'BAD_REQUEST' } })
      expect(s.sim.calls.length).toBe(before)
    })
  })
})
