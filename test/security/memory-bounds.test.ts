// Issue 11.7: nothing a client or the upstream sends grows memory without bound.
//  (a) a GET answer larger than an entry may be is streamed through, never held whole;
//  (b) the bytes of request bodies held at once are bounded (503 QUEUE_FULL past it);
//  (c) the URL -> key memo is bounded by bytes.
// RSS figures for the same three cases: bench/memory-bounds.ts.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterEach, describe, expect, it } from 'vitest'
import { KEY_MEMO_BYTES } from '../../src/cache/http-cache.js'
import { sleep, startStack, until, type Stack } from '../helpers.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Reads a fetch body until `bytes` have arrived; returns what came and the reader. */
async function readAtLeast(r: Response, bytes: number) {
  const reader = r.body!.getReader()
  let got = 0
  while (got < bytes) {
    const { done, value } = await reader.read()
    if (done) break
    got += value.length
  }
  return { got, reader }
}

async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<number> {
  let got = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return got
    got += value.length
  }
}

describe('memory bounds', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('(a) a cacheable GET larger than an entry reaches the client before the upstream finished, and is not stored', async () => {
    // entries up to 1 MiB (CACHE_MAX_BYTES / 8)
    s = await startStack({ env: { CACHE_MAX_BYTES: String(8 * 1024 * 1024) } })
    // the simulator sends half of 4 MB, then holds the rest until released
    const r = await Promise.race([fetch(`${s.url}/api/v3/_debug/big?bytes=4000000&hold=1`), sleep(10_000).then(() => undefined)])
    expect(r, "the answer's head came while the upstream was still holding its second half").toBeDefined()
    expect(r!.status).toBe(200)
    expect(r!.headers.get('x-cache')).toBe('MISS')
    const first = await readAtLeast(r!, 1_500_000) // more than an entry may hold, before the rest exists
    expect(first.got).toBeGreaterThanOrEqual(1_500_000)
    s.sim.debug.release()
    const total = first.got + (await readRest(first.reader))
    expect(total).toBe(4_000_000)
    expect(s.app.cache.store.entries).toBe(0)
  })

  it('(a) coalesced waiters of such a fill each receive the whole answer from one upstream call', async () => {
    s = await startStack({ env: { CACHE_MAX_BYTES: String(8 * 1024 * 1024) } })
    const url = `${s.url}/api/v3/_debug/big?bytes=3000000&hold=1`
    const answers = Array.from({ length: 3 }, () => fetch(url))
    await until(() => s!.sim.count('/_debug/big') === 1)
    const heads = await Promise.all(answers)
    const firsts = await Promise.all(heads.map((r) => readAtLeast(r, 1_200_000)))
    s.sim.debug.release()
    const totals = await Promise.all(firsts.map(async (f) => f.got + (await readRest(f.reader))))
    expect(totals).toEqual([3_000_000, 3_000_000, 3_000_000])
    expect(s.sim.count('/_debug/big')).toBe(1)
    // a waiter that leaves does not stop the others
    const again = [fetch(url), fetch(url)]
    const [gone, stays] = await Promise.all(again)
    await gone!.body!.cancel()
    const part = await readAtLeast(stays!, 1_200_000)
    s.sim.debug.release()
    expect(part.got + (await readRest(part.reader))).toBe(3_000_000)
  })

  it('(b) request bodies held at once are bounded: past 4 x BODY_LIMIT_BYTES, 503 QUEUE_FULL; the bytes come back', async () => {
    s = await startStack({
      env: { BODY_LIMIT_BYTES: '100000', UPSTREAM_RATE_LIMIT: '1', QUEUE_TIMEOUT_MS: '2000', QUEUE_MAX: '100' },
    })
    expect((await fetch(`${s.url}/api/v3/jobs/1`)).status).toBe(200) // spends the window's only call
    const body = JSON.stringify({ note: 'x'.repeat(99_000) })
    const post = () =>
      fetch(`${s!.url}/api/v3/jobs/1/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(async (r) => ({
        status: r.status,
        code: ((await r.json()) as { error?: { code?: string } }).error?.code,
        retryAfter: r.headers.get('retry-after'),
      }))
    const answers = await Promise.all(Array.from({ length: 7 }, post))
    const full = answers.filter((a) => a.code === 'QUEUE_FULL')
    expect(full.length).toBeGreaterThanOrEqual(3) // at most 4 bodies of ~100 kB fit in 400 kB
    for (const a of full) {
      expect(a.status).toBe(503)
      expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1)
    }
    expect(s.sim.count('/jobs/1/notes', 'POST')).toBe(0)
    // every byte was given back when those answers ended: four bodies fit again
    const later = await Promise.all(Array.from({ length: 4 }, post))
    expect(later.filter((a) => a.code === 'QUEUE_FULL')).toHaveLength(0)
  })

  it('(c) the URL -> key memo stays within its byte bound after 9,000 unique long URLs (the old one was cleared at 10,000)', async () => {
    s = await startStack()
    const cache = s.app.cache
    const req = (i: number) => ({
      rawPath: '/jobs',
      rawQuery: `?keyword=${'k'.repeat(8000)}&page=${i}`,
      cacheControl: undefined,
      client: 't',
      signal: () => new AbortController().signal,
    })
    cache.lookup(req(-1))
    gc()
    const before = process.memoryUsage().heapUsed
    for (let i = 0; i < 9_000; i++) cache.lookup(req(i))
    gc()
    const grown = process.memoryUsage().heapUsed - before
    expect(cache.keyMemoBytes).toBeGreaterThan(0)
    expect(cache.keyMemoBytes).toBeLessThanOrEqual(KEY_MEMO_BYTES)
    // the old memo kept ~31 KB per URL (+309 MiB here); now a few MiB at most
    expect(grown).toBeLessThan(32 * 1024 * 1024)
  })
})
