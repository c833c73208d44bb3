// Entries compressed at rest: gzip clients get the stored gzip bytes, others the identity bytes;
// HEAD and 304 agree with GET; one ETag per representation; stored bytes are counted compressed.
import { request } from 'node:http'
import { gunzipSync } from 'node:zlib'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { createSimulator, type Simulator } from '../../simulator/app.js'
import { startStack, until, type Stack } from '../helpers.js'
import { hasRedis, startRedis, startReplica, type RedisServer, type Replica } from '../redis/fixtures.js'

interface Raw {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** A request with exactly these headers (fetch would add Accept-Encoding and decode for us). */
function raw(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const GZ = { 'accept-encoding': 'gzip, deflate, br' }
const LIST = '/api/v3/jobs?limit=50&page=1&includes[]=customer'

/** Misses store identity at once and compress in the thread pool: wait until a gzip client gets gzip. */
async function compressedHit(url: string): Promise<Raw> {
  let r!: Raw
  await until(
    async () => {
      r = await raw(url, GZ)
      return r.headers['x-cache'] === 'HIT' && r.headers['content-encoding'] === 'gzip'
    },
    5000,
    5,
  )
  return r
}

describe('compressed at rest, gzip to clients that accept it', () => {
  let s: Stack
  afterEach(async () => s?.close())

  it('a gzip client gets gzip bytes that decode to exactly the identity answer; a client without Accept-Encoding gets identity', async () => {
    s = await startStack()
    const miss = await raw(s.url + LIST)
    expect(miss.headers['x-cache']).toBe('MISS')
    expect(miss.headers['content-encoding']).toBeUndefined()
    const identity = miss.body
    expect(identity.length).toBeGreaterThan(5000)
    JSON.parse(identity.toString('utf8'))

    const gz = await compressedHit(s.url + LIST)
    expect(gz.headers.vary).toMatch(/accept-encoding/i)
    expect(Number(gz.headers['content-length'])).toBe(gz.body.length)
    expect(gz.body.length).toBeLessThan(identity.length / 3)
    expect(gunzipSync(gz.body).equals(identity)).toBe(true)

    const plain = await raw(s.url + LIST)
    expect(plain.headers['x-cache']).toBe('HIT')
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(plain.headers.vary).toMatch(/accept-encoding/i)
    expect(plain.body.equals(identity)).toBe(true)
    expect(plain.headers['content-type']).toBe(gz.headers['content-type'])

    // one ETag per representation; the identity one is the one the miss carried
    expect(plain.headers.etag).toBe(miss.headers.etag)
    expect(gz.headers.etag).not.toBe(plain.headers.etag)
    expect(gz.headers.etag).toMatch(/-gz"$/)

    // Accept-Encoding is honoured as written: q=0 refuses, * accepts, br alone is not gzip
    expect((await raw(s.url + LIST, { 'accept-encoding': 'gzip;q=0, identity' })).headers['content-encoding']).toBeUndefined()
    expect((await raw(s.url + LIST, { 'accept-encoding': '*' })).headers['content-encoding']).toBe('gzip')
    expect((await raw(s.url + LIST, { 'accept-encoding': 'br' })).headers['content-encoding']).toBeUndefined()
    expect((await raw(s.url + LIST, { 'accept-encoding': 'x-gzip;q=0.5' })).headers['content-encoding']).toBe('gzip')
    expect(s.sim.calls.filter((c) => c.path === '/jobs').length).toBe(1)
  })

  it('HEAD and 304 agree with GET, for each representation', async () => {
    s = await startStack()
    await raw(s.url + LIST)
    const gz = await compressedHit(s.url + LIST)
    const plain = await raw(s.url + LIST)
    for (const [get, headers] of [
      [gz, GZ],
      [plain, {}],
    ] as const) {
      const head = await raw(s.url + LIST, headers, 'HEAD')
      expect(head.status).toBe(200)
      expect(head.body.length).toBe(0)
      for (const h of ['etag', 'vary', 'content-encoding', 'content-type', 'content-length', 'x-cache']) expect([h, head.headers[h]]).toEqual([h, get.headers[h]])

      const notModified = await raw(s.url + LIST, { ...headers, 'if-none-match': String(get.headers.etag) })
      expect(notModified.status).toBe(304)
      expect(notModified.body.length).toBe(0)
      expect(notModified.headers.etag).toBe(get.headers.etag)
      expect(notModified.headers.vary).toBe(get.headers.vary)
      const headNotModified = await raw(s.url + LIST, { ...headers, 'if-none-match': String(get.headers.etag) }, 'HEAD')
      expect(headNotModified.status).toBe(304)
    }
    // the other representation's ETag does not match
    expect((await raw(s.url + LIST, { 'if-none-match': String(gz.headers.etag) })).status).toBe(200)
    expect((await raw(s.url + LIST, { ...GZ, 'if-none-match': String(plain.headers.etag) })).status).toBe(200)
  })

  it('stored bytes are counted compressed against CACHE_MAX_BYTES', async () => {
    s = await startStack()
    const miss = await raw(s.url + LIST)
    await compressedHit(s.url + LIST)
    const status = (await (await fetch(`${s.url}/_proxy/status`)).json()) as { cache: { bytes: number; entries: number } }
    expect(status.cache.entries).toBe(1)
    expect(status.cache.bytes).toBeLessThan(miss.body.length / 3)

    // a cache that holds 9 identity answers holds 12 compressed ones (identity: 12 would not fit)
    await s.close()
    const max = miss.body.length * 9
    s = await startStack({ env: { CACHE_MAX_BYTES: String(max) } })
    for (let page = 1; page <= 12; page++) {
      const url = `${s.url}/api/v3/jobs?limit=50&page=1&includes[]=customer&k=${page}`
      await raw(url)
      await compressedHit(url)
    }
    const small = (await (await fetch(`${s.url}/_proxy/status`)).json()) as { cache: { bytes: number; entries: number } }
    expect(small.cache.entries).toBe(12)
    expect(small.cache.bytes).toBeLessThanOrEqual(max)
  })

  it('small answers stay identity (gzip would not pay), with Vary all the same', async () => {
    s = await startStack()
    await raw(s.url + '/api/v3/jobs/1/notes', GZ)
    const hit = await raw(s.url + '/api/v3/jobs/1/notes', GZ)
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.body.length).toBeLessThan(512)
    expect(hit.headers['content-encoding']).toBeUndefined()
    expect(hit.headers.vary).toMatch(/accept-encoding/i)
  })
})

describe.skipIf(!hasRedis)('the Redis tier holds compressed entries too', () => {
  let redis: RedisServer | undefined
  let sim: Simulator | undefined
  let replicas: Replica[] = []
  afterEach(async () => {
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')))
    replicas = []
    await sim?.close()
    await redis?.stop()
  })

  it("replica B answers from A's gzip entry in Redis, in both representations", async () => {
    redis = await startRedis()
    sim = createSimulator({ rateLimit: 1000 })
    const simUrl = await sim.listen()
    const env = { REDIS_URL: redis.url, JOBPROGRESS_API_URL: simUrl }
    const [a, b] = await Promise.all([startReplica(env), startReplica(env)])
    replicas.push(a, b)
    const identity = (await raw(a.url + LIST)).body
    const client = new Redis(redis.url)
    const keys = await client.keys('jpp:c:*')
    const stored = JSON.parse((await client.get(keys[0]!))!) as { encoding: string; body: string }
    await client.quit()
    expect(stored.encoding).toBe('gzip')
    expect(Buffer.from(stored.body, 'base64').length).toBeLessThan(identity.length / 3)

    const gz = await raw(b.url + LIST, GZ)
    expect(gz.headers['x-cache']).toBe('HIT')
    expect(gz.headers['content-encoding']).toBe('gzip')
    const plain = await raw(b.url + LIST)
    expect(plain.headers['content-encoding']).toBeUndefined()
    // B's answer: pagination links on B's own URL, the rest A's answer byte for byte
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true)
    expect(plain.body.toString().replaceAll(new URL(b.url).host, new URL(a.url).host)).toBe(identity.toString())
    expect(sim.calls.filter((c) => c.path === '/jobs').length).toBe(1)
  }, 40_000)
})
