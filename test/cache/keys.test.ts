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
      'includes%5B%5D=customer&includes[0]=address&includes[]=customer',
      'includes[1]=customer&includes[0]=address',
      'includes=other&includes[]=address&includes[]=customer',
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

// What PHP (parse_str) and Fractal make of a query decides what may share an entry: merged only
// when they read the same value, else kept apart (a lost hit is cheap, a wrong merge is not).
describe('cache keys follow PHP/Laravel query parsing', () => {
  const same: Array<[string, string, string]> = [
    ['order of different names', '/jobs?limit=5&page=2', '/jobs?page=2&limit=5'],
    ['+ and %20 are both a space', '/jobs?keyword=a+b', '/jobs?keyword=a%20b'],
    ['encoded and plain brackets in a name', '/jobs?job_ids%5B%5D=1', '/jobs?job_ids[]=1'],
    ['lower- and upper-case hex', '/jobs?keyword=%c3%a9', '/jobs?keyword=%C3%A9'],
    ['an encoded unreserved character in the path', '/jobs/%31', '/jobs/1'],
    ['includes[] order and duplicates', '/jobs?includes[]=b&includes[]=a&includes[]=b', '/jobs?includes[]=a&includes[]=b'],
    ['includes=a,b and includes[]', '/jobs?includes=b,a', '/jobs?includes[]=a&includes[]=b'],
    ['includes[N] and includes[]', '/jobs?includes[1]=b&includes[0]=a', '/jobs?includes[]=a&includes[]=b'],
    ['includes[0] twice: the later wins', '/jobs?includes[0]=a&includes[0]=b', '/jobs?includes[]=b'],
    ['includes[] then includes[0]: [0] overwrites', '/jobs?includes[]=a&includes[0]=b', '/jobs?includes[]=b'],
    ['a later includes[] replaces the string includes=', '/jobs?includes=a&includes[]=b', '/jobs?includes[]=b'],
    ['a later includes= replaces the array', '/jobs?includes[]=b&includes=a', '/jobs?includes[]=a'],
    ['includes= twice: the later wins', '/jobs?includes=a&includes=b', '/jobs?includes[]=b'],
    ['an index after a larger one appends', '/jobs?includes[5]=a&includes[]=b', '/jobs?includes[]=a&includes[]=b'],
    ['a name PHP reads with _ for . (same group, order kept)', '/jobs?a.b=1&z=2', '/jobs?z=2&a.b=1'],
  ]
  const apart: Array<[string, string, string]> = [
    ['an encoded ? in the path is not the query', '/x/%3Fpage=2', '/x/?page=2'],
    ['an encoded & in a value is not a separator', '/jobs?keyword=a%26page=2', '/jobs?keyword=a&page=2'],
    ['an encoded = in a name', '/jobs?a%3Db=1', '/jobs?a=b=1'],
    ['an encoded / in the path', '/x%2Fy', '/x/y'],
    ['+ in the path is a plus, not a space', '/x+y', '/x%20y'],
    ['%2B and + in the path (Laravel decodes, we stay strict)', '/x%2By', '/x+y'],
    ['includes[0] twice is not both', '/jobs?includes[0]=a&includes[0]=b', '/jobs?includes[]=a&includes[]=b'],
    ['mixed includes= then includes[] is not both', '/jobs?includes=a&includes[]=b', '/jobs?includes[]=a&includes[]=b'],
    ['a value with a space is another name (no trimming assumed)', '/jobs?includes[]=%20a', '/jobs?includes[]=a'],
    ['includes= with a space after the comma', '/jobs?includes=a,%20b', '/jobs?includes=a,b'],
    ['an empty includes[] is not no includes', '/jobs?includes[]=', '/jobs'],
    ['an empty item is not dropped', '/jobs?includes=a,', '/jobs?includes=a'],
    ['an array item with a comma is one (unknown) name', '/jobs?includes[]=a,b', '/jobs?includes[]=a&includes[]=b'],
    ['Fractal modifiers: the first of two wins', '/jobs?includes[]=a:limit(1)&includes[]=a:limit(2)', '/jobs?includes[]=a:limit(2)&includes[]=a:limit(1)'],
    ['a leading-zero index is a string key', '/jobs?includes[01]=a&includes[1]=b', '/jobs?includes[1]=b&includes[01]=a'],
    ['repeated plain names: the later wins', '/jobs?page=1&page=2', '/jobs?page=2&page=1'],
    ['array order is kept', '/jobs?stages[]=a&stages[]=b', '/jobs?stages[]=b&stages[]=a'],
    ['x= then x[] differs from x[] then x=', '/jobs?x=1&x[]=2', '/jobs?x[]=2&x=1'],
    ['two names PHP maps to one variable keep their order', '/jobs?a.b=1&a_b=2', '/jobs?a_b=2&a.b=1'],
    ['a stray bracket keeps the whole query in order', '/jobs?includes[0=a&includes_0=b', '/jobs?includes_0=b&includes[0=a'],
  ]
  const key = (u: string) => {
    const q = u.indexOf('?')
    return cacheKey(q < 0 ? u : u.slice(0, q), q < 0 ? '' : u.slice(q)).key
  }
  it.each(same)('same entry: %s', (_why, a, b) => {
    expect(key(a)).toBe(key(b))
  })
  it.each(apart)('different entries: %s', (_why, a, b) => {
    expect(key(a)).not.toBe(key(b))
  })

  it('the includes set of a key, and a superset when the form is kept as sent', () => {
    expect(cacheKey('/jobs', '?includes[0]=a&includes[0]=b').includes).toEqual(['b'])
    expect(cacheKey('/jobs', '?includes=a,b').includes).toEqual(['a', 'b'])
    expect(cacheKey('/jobs', '?includes[]=a&includes[x]=b').includes).toEqual(['a', 'b'])
    // Fractal includes the parent of a nested include: an eviction by `customer` must reach it
    expect(cacheKey('/jobs', '?includes[]=customer.address').includes).toEqual(['customer', 'customer.address'])
  })

  describe('end to end', () => {
    let s: Stack
    beforeAll(async () => {
      s = await startStack()
    })
    afterAll(() => s.close())

    it('an encoded ? in the path does not get the entry of the real query', async () => {
      const list = await fetch(`${s.url}/api/v3/jobs?page=2`)
      expect(list.status).toBe(200)
      const odd = await fetch(`${s.url}/api/v3/jobs%3Fpage=2`)
      expect(odd.headers.get('x-cache')).toBe('MISS')
      expect(odd.status).toBe(404) // what JobProgress answers for that path, not the cached list
      expect(s.sim.count(/^\/jobs/)).toBe(2)
    })

    it('includes[0] twice gets what JobProgress answers for it, not the cached pair', async () => {
      const both = (await (await fetch(`${s.url}/api/v3/jobs/14?includes[]=address&includes[]=customer`)).json()) as { data: Record<string, unknown> }
      expect(both.data).toHaveProperty('address')
      expect(both.data).toHaveProperty('customer')
      const r = await fetch(`${s.url}/api/v3/jobs/14?includes[0]=address&includes[0]=customer`)
      expect(r.headers.get('x-cache')).toBe('MISS')
      const later = (await r.json()) as { data: Record<string, unknown> }
      expect(later.data).toHaveProperty('customer')
      expect(later.data).not.toHaveProperty('address')
      // and the form PHP reads the same way is a hit
      const hit = await fetch(`${s.url}/api/v3/jobs/14?includes[]=customer`)
      expect(hit.headers.get('x-cache')).toBe('HIT')
    })
  })
})
