// Issue 11.4: an upstream answer that reflects the request's headers must never show the token to a
// client, nor be stored (first tier or Redis tier). Cached paths: 502 UPSTREAM_LEAKED_TOKEN;
// streamed answers (writes, answers too large for an entry): the token's bytes masked.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DEMO_TOKEN, startStack, until, type Stack } from '../helpers.js'
import { hasRedis, startRedis, type RedisServer } from '../redis/fixtures.js'
import { MaskSecret, secretForms } from '../../src/upstream/leak.js'
import { Readable } from 'node:stream'

const MASKED = '*'.repeat(DEMO_TOKEN.length)

describe('the token in an upstream answer', () => {
  let s: Stack
  beforeAll(async () => {
    // entries up to 1 MiB (CACHE_MAX_BYTES / 8): larger answers are streamed
    s = await startStack({ env: { CACHE_MAX_BYTES: String(8 * 1024 * 1024) } })
  })
  afterAll(() => s.close())

  it('a GET whose body reflects it: 502 UPSTREAM_LEAKED_TOKEN, not stored, asked again next time', async () => {
    for (let i = 1; i <= 2; i++) {
      const r = await fetch(`${s.url}/api/v3/_debug/echo`)
      const text = await r.text()
      expect(r.status).toBe(502)
      expect(text).not.toContain(DEMO_TOKEN)
      expect(JSON.parse(text)).toMatchObject({ error: { status_code: 502, code: 'UPSTREAM_LEAKED_TOKEN' } })
      expect(s.sim.count('/_debug/echo', 'GET')).toBe(i)
    }
    expect(s.app.cache.store.entries).toBe(0)
    expect(s.logs.some((l) => l.includes('contained the JobProgress token'))).toBe(true)
    expect(s.logs.join('\n')).not.toContain(DEMO_TOKEN)
  })

  it('in a response header, or gzip-compressed: 502 as well', async () => {
    for (const q of ['in=header', 'encoding=gzip', 'in=both&status=500']) {
      const r = await fetch(`${s.url}/api/v3/_debug/echo?${q}`)
      const text = await r.text()
      expect(r.status, q).toBe(502)
      expect(text).not.toContain(DEMO_TOKEN)
      expect([...r.headers.values()].join('\n')).not.toContain(DEMO_TOKEN)
    }
    expect(s.app.cache.store.entries).toBe(0)
  })

  it('coalesced waiters of the fill all get the 502', async () => {
    const before = s.sim.count('/_debug/echo', 'GET')
    const answers = await Promise.all(Array.from({ length: 4 }, () => fetch(`${s.url}/api/v3/_debug/echo?in=both`)))
    const texts = await Promise.all(answers.map((r) => r.text()))
    expect(answers.map((r) => r.status)).toEqual([502, 502, 502, 502])
    for (const t of texts) expect(t).not.toContain(DEMO_TOKEN)
    expect(s.sim.count('/_debug/echo', 'GET') - before).toBe(1)
  })

  it('a pass-through write: the answer streams with the token masked, its length consistent', async () => {
    const r = await fetch(`${s.url}/api/v3/_debug/echo?in=both`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(r.status).toBe(200)
    expect(r.headers.get('x-debug-authorization')).toBe(`Bearer ${MASKED}`)
    const text = await r.text()
    expect(text).not.toContain(DEMO_TOKEN)
    const body = JSON.parse(text) as { data: { headers: Record<string, string> } }
    expect(body.data.headers.authorization).toBe(`Bearer ${MASKED}`)
    if (r.headers.get('content-length')) expect(Number(r.headers.get('content-length'))).toBe(Buffer.byteLength(text))
  })

  it('a gzip-compressed write answer is opened and masked too', async () => {
    const r = await fetch(`${s.url}/api/v3/_debug/echo?encoding=gzip`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    const text = await r.text()
    expect(r.status).toBe(200)
    expect(text).not.toContain(DEMO_TOKEN)
    expect(text).toContain(MASKED)
  })

  it('a GET too large for an entry streams through with the token masked, even split across chunks', async () => {
    const r = await fetch(`${s.url}/api/v3/_debug/big?bytes=3000000&token=1`)
    expect(r.status).toBe(200)
    const text = await r.text()
    expect(text.length).toBeGreaterThan(2_900_000)
    expect(text).not.toContain(DEMO_TOKEN)
    expect(text).toContain(MASKED)
    expect(s.app.cache.store.entries).toBe(0)
  })

  it('MaskSecret masks an occurrence wherever chunk boundaries fall', async () => {
    const secret = Buffer.from('s3cr3t-token-value')
    const text = `aa${secret}bb${secret}${secret}c`
    for (let size = 1; size <= text.length; size++) {
      const chunks: Buffer[] = []
      for (let i = 0; i < text.length; i += size) chunks.push(Buffer.from(text.slice(i, i + size)))
      let found = 0
      const out: Buffer[] = []
      for await (const c of Readable.from(chunks).pipe(new MaskSecret(secret, () => found++))) out.push(c as Buffer)
      const masked = Buffer.concat(out).toString()
      expect(masked).toBe(text.split(secret.toString()).join('*'.repeat(secret.length)))
      expect(found).toBeGreaterThan(0)
    }
  })

  it('an opaque token is also found JSON-escaped the PHP way and percent-encoded', async () => {
    const token = 'ab/cd+ef==opaque-token'
    const text = `{"h":"Bearer ab\\/cd+ef==opaque-token","q":"t=ab%2Fcd%2Bef%3D%3Dopaque-token"}`
    let found = 0
    const out: Buffer[] = []
    for await (const c of Readable.from([Buffer.from(text)]).pipe(new MaskSecret(secretForms(token), () => found++))) out.push(c as Buffer)
    const masked = Buffer.concat(out).toString()
    expect(found).toBe(1)
    expect(masked).not.toContain('opaque-token')
    expect(masked.length).toBe(text.length)
  })
})

describe.skipIf(!hasRedis)('the Redis tier never receives it', () => {
  let redis: RedisServer
  let s: Stack | undefined
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterEach(async () => {
    await s?.close()
    s = undefined
  })
  afterAll(() => redis.stop())

  it('a leaking GET is not written to Redis, an ordinary one is', async () => {
    s = await startStack({ env: { REDIS_URL: redis.url } })
    await until(() => s!.app.distributed!.up())
    const leak = await fetch(`${s.url}/api/v3/_debug/echo`)
    expect(leak.status).toBe(502)
    await leak.text()
    const ok = await fetch(`${s.url}/api/v3/jobs/3`)
    expect(ok.status).toBe(200)
    await ok.text()
    const r = s.app.distributed!.redis
    const keys = await r.keys('*')
    expect(keys.some((k) => k.includes('/jobs/3'))).toBe(true) // the tier is in use
    expect(keys.some((k) => k.includes('_debug'))).toBe(false)
    for (const k of keys) {
      const type = await r.type(k)
      const value = type === 'string' ? await r.get(k) : type === 'set' ? (await r.smembers(k)).join(' ') : ''
      expect(value ?? '').not.toContain(DEMO_TOKEN)
    }
  })
})
