// Issue 11, point 11: pagination links point at the proxy (PUBLIC_URL, else the URL the client used),
// rewritten when answering, never stored with one client's host.
import { afterEach, describe, expect, it } from 'vitest'
import { rewriteLink, rewritePaginationLinks } from '../../src/cache/links.js'
import { startStack, type Stack } from '../helpers.js'
import { Conn, send } from './raw-http.js'

type List = { data: Array<{ id: number }>; meta: { pagination: { current_page: number; links: Record<string, string> } } }

let s: Stack | undefined
afterEach(async () => {
  await s?.close()
  s = undefined
})

describe('pagination links through the proxy', () => {
  it('point at the URL each client used, for the same cached entry; following next goes through the proxy', async () => {
    s = await startStack()
    const a = await send(s.port, { path: '/api/v3/jobs?limit=5&page=2', headers: { host: `127.0.0.1:${s.port}` } })
    const b = await send(s.port, { path: '/api/v3/jobs?limit=5&page=2', headers: { host: `localhost:${s.port}` } })
    expect(a.headers['x-cache']).toBe('MISS')
    expect(b.headers['x-cache']).toBe('HIT')
    const la = (a.json() as List).meta.pagination.links
    const lb = (b.json() as List).meta.pagination.links
    expect(la.next).toBe(`http://127.0.0.1:${s.port}/api/v3/jobs?limit=5&page=3`)
    expect(la.previous).toBe(`http://127.0.0.1:${s.port}/api/v3/jobs?limit=5&page=1`)
    expect(lb.next).toBe(`http://localhost:${s.port}/api/v3/jobs?limit=5&page=3`)
    // no link leads to JobProgress (the simulator)
    expect(a.text + b.text).not.toContain(new URL(s.sim.url).host)
    // the stored entry was not written with the first client's host: a third one sees its own again
    const c = await send(s.port, { path: '/api/v3/jobs?limit=5&page=2', headers: { host: `127.0.0.1:${s.port}` } })
    expect(c.headers['x-cache']).toBe('HIT')
    expect(c.text).toBe(a.text)
    expect(Number(c.headers['content-length'])).toBe(c.body.length)
    // following next: through the proxy, a real answer
    const next = await fetch(la.next!)
    expect(next.status).toBe(200)
    expect(((await next.json()) as List).meta.pagination.current_page).toBe(3)
    expect(s.sim.calls.map((x) => x.url)).toEqual(['/api/v3/jobs?limit=5&page=2', '/api/v3/jobs?limit=5&page=3'])
  })

  it('PUBLIC_URL (with a path) is used for every client; HEAD has the same length; a 304 still matches', async () => {
    s = await startStack({ env: { PUBLIC_URL: 'https://jp.example.com/gw/' } })
    // one representation throughout (entries are stored gzip; gzip clients get it: test/cache/encoding.test.ts)
    const identity = { 'accept-encoding': 'identity' }
    const r = await fetch(`${s.url}/api/v3/customers?limit=3`, { headers: identity })
    const text = await r.text()
    const links = (JSON.parse(text) as List).meta.pagination.links
    expect(links.next).toBe('https://jp.example.com/gw/api/v3/customers?limit=3&page=2')
    const head = await fetch(`${s.url}/api/v3/customers?limit=3`, { method: 'HEAD', headers: identity })
    expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(text))
    const etag = r.headers.get('etag')!
    const again = await fetch(`${s.url}/api/v3/customers?limit=3`, { headers: { ...identity, 'if-none-match': etag } })
    expect(again.status).toBe(304)
  })

  it('PHP-encoded answers: only the links object changes; escaped slashes, big numbers and key order elsewhere stay byte for byte', async () => {
    s = await startStack()
    const upstream = new URL(s.sim.url)
    const body =
      '{"data":[{"id":12345678901234567890,"url":"https:\\/\\/x.example\\/a","note":"\\"links\\":{\\"next\\":\\"x\\"}","meta":{"pagination":{"links":{"next":"keep"}}}}],' +
      `"meta":{"pagination":{"total":57,"count":1,"per_page":1,"current_page":1,"total_pages":57,"links":{"next":"http:\\/\\/${upstream.host}\\/api\\/v3\\/jobs?limit=1&page=2"}}},"status":200}`
    s.sim.inject({ kind: 'answer', method: 'GET', path: '/jobs', status: 200, body })
    const c = new Conn(s.port)
    try {
      c.write('GET /api/v3/jobs?limit=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n')
      const r = await c.read()
      expect(r.status).toBe(200)
      const expected = body.replace(/"links":\{"next":"http[^}]*\}/, '"links":{"next":"http://127.0.0.1:8080/api/v3/jobs?limit=1&page=2"}')
      expect(expected).not.toBe(body)
      expect(r.text).toBe(expected)
      c.write('GET /api/v3/jobs/1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n')
      expect((await c.read()).status).toBe(200) // the length was right: the connection is in step
    } finally {
      c.close()
    }
  })
})

describe('rewritePaginationLinks (Buffer in, Buffer out)', () => {
  const base = 'http://proxy:8080'
  it('returns the very same Buffer when there is nothing to rewrite', () => {
    for (const text of [
      '{"data":{"id":1},"status":200}',
      '{"data":[],"meta":{"pagination":{"links":{}}}}',
      '{"data":[],"meta":{"pagination":{"links":[]}}}',
      '{"data":[{"links":{"next":"https://api.jobprogress.com/api/v3/x"}}]}',
      '{"data":[],"meta":{"pagination":{"links":{"next":"https://api.jobprogress.com/api/v33/x"}}}}',
      '<html>"links"</html>',
      '{"meta":{"pagination":{"links":{"next":"https://api',
    ]) {
      const b = Buffer.from(text)
      expect(rewritePaginationLinks(b, base, '/api/v3'), text).toBe(b)
    }
  })

  it('rewrites every string link under the upstream base path, any origin, keeps the rest', () => {
    const b = Buffer.from(
      ' { "status" : 200 , "meta" : { "x": [1, {"y": "}"}], "pagination" : { "links" : { "next" : "https://api.jobprogress.com/api/v3/jobs?page=2", "previous": "http://10.0.0.1/api/v3/jobs?page=0", "other": "https://elsewhere/x", "n": 3 } } } } ',
    )
    const out = rewritePaginationLinks(b, base, '/api/v3')
    const parsed = JSON.parse(out.toString()) as { meta: { pagination: { links: Record<string, unknown> } } }
    expect(parsed.meta.pagination.links).toEqual({ next: 'http://proxy:8080/api/v3/jobs?page=2', previous: 'http://proxy:8080/api/v3/jobs?page=0', other: 'https://elsewhere/x', n: 3 })
    expect(out.toString().startsWith(' { "status" : 200 , "meta" : { "x": [1, {"y": "}"}], "pagination" : { "links" : {"next"')).toBe(true)
    // remembered per base: a second base gets its own links, the first stays right
    expect(JSON.parse(rewritePaginationLinks(b, 'https://jp.example.com', '/api/v3').toString()).meta.pagination.links.next).toBe('https://jp.example.com/api/v3/jobs?page=2')
    expect(rewritePaginationLinks(b, base, '/api/v3').equals(out)).toBe(true)
  })

  it('rewriteLink: a different upstream base path maps onto /api/v3', () => {
    expect(rewriteLink('https://gw.example/jp/api/v3/jobs?page=2', base, '/jp/api/v3')).toBe('http://proxy:8080/api/v3/jobs?page=2')
    expect(rewriteLink('/api/v3/jobs?page=2', base, '/api/v3')).toBe('http://proxy:8080/api/v3/jobs?page=2')
    expect(rewriteLink('//evil/api/v3/jobs', base, '/api/v3')).toBe('//evil/api/v3/jobs')
    expect(rewriteLink('jobs?page=2', base, '/api/v3')).toBe('jobs?page=2')
  })
})
