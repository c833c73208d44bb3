// Memory under the three inputs of issue 11.7, each in a fresh process (RSS is per process):
//   big-get   one cacheable GET answered with BIG_MB of JSON (the proxy used to hold it whole)
//   bodies    40 uploads of 25 MiB waiting for an exhausted budget (they used to be held, all)
//   memo      9,000 unique 8 KB URLs looked up (the URL -> key memo used to keep ~16-31 KB each; it was cleared at 10,000)
// Usage: npx tsx bench/memory-bounds.ts            (all three, a Markdown table on stdout)
//        npx tsx bench/memory-bounds.ts <scenario> (one, a JSON line)
// The upstream is a bare http server of this script's own, so the figures are the proxy's.
import { spawnSync } from 'node:child_process'
import { createServer, request, type Server } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import pino from 'pino'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'

const MiB = 1024 * 1024
const BIG_MB = Number(process.env.BIG_MB ?? 512)
const TOKEN = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.bench.bench-signature'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const rss = () => process.memoryUsage().rss / MiB

function upstream(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/api/v3/big')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      const piece = Buffer.alloc(64 * 1024, 'x')
      let left = BIG_MB * MiB
      res.write('{"data":"')
      const pump = () => {
        while (left > 0) {
          left -= piece.length
          if (!res.write(piece)) return void res.once('drain', pump)
        }
        res.end('"}')
      }
      pump()
      return
    }
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"data":{},"status":200}')
    })
  })
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/api/v3` })))
}

async function proxy(apiUrl: string, env: Record<string, string> = {}) {
  const loaded = loadConfig({ JOBPROGRESS_TOKEN: TOKEN, JOBPROGRESS_API_URL: apiUrl, CACHE_DIR: '', ...env })
  const app = await buildApp({ ...loaded, logger: pino({ level: 'silent' }) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` }
}

async function scenario(name: string): Promise<Record<string, number | string>> {
  const up = await upstream()
  let peak = 0
  const sampler = setInterval(() => (peak = Math.max(peak, rss())), 20)
  try {
    if (name === 'big-get') {
      const p = await proxy(up.url)
      gc()
      const before = rss()
      const r = await fetch(`${p.url}/api/v3/big`)
      let got = 0
      for await (const c of r.body!) got += (c as Uint8Array).length
      peak = Math.max(peak, rss())
      await p.app.close()
      return { scenario: name, answerMiB: Math.round(got / MiB), rssBeforeMiB: Math.round(before), rssPeakMiB: Math.round(peak), grownMiB: Math.round(peak - before) }
    }
    if (name === 'bodies') {
      const p = await proxy(up.url, { UPSTREAM_RATE_LIMIT: '1', QUEUE_TIMEOUT_MS: '30000' })
      await (await fetch(`${p.url}/api/v3/jobs/1`)).text() // spends the window's only call
      gc()
      const before = rss()
      const body = Buffer.alloc(25 * MiB - 1024, 'a')
      const codes: Record<string, number> = {}
      const snapshot = () => JSON.stringify(codes)
      const count = (c: string) => (codes[c] = (codes[c] ?? 0) + 1)
      // node:http, not fetch: fetch copies each body (1 GB in this process); here all 40 share one Buffer
      const posts = Array.from(
        { length: 40 },
        () =>
          new Promise<void>((done) => {
            let settled = false
            const resolve = () => {
              settled = true
              done()
            }
            const req = request(`${p.url}/api/v3/jobs/1/notes`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
              const chunks: Buffer[] = []
              res.on('data', (c: Buffer) => chunks.push(c))
              res.on('end', () => {
                if (settled) return
                count(res.statusCode === 503 ? (JSON.parse(Buffer.concat(chunks).toString()) as { error: { code: string } }).error.code : String(res.statusCode))
                resolve()
              })
            })
            req.on('error', () => {
              if (settled) return
              count('error')
              resolve()
            })
            req.end(body)
          }),
      )
      // the rejected answer at once; the others wait for the budget: measure while they wait
      const end = Date.now() + 20_000
      while (Date.now() < end && p.app.upstream.throttle.depth + Object.values(codes).reduce((a, b) => a + b, 0) < 40) await new Promise((r) => setTimeout(r, 100))
      await new Promise((r) => setTimeout(r, 500))
      gc()
      peak = Math.max(peak, rss())
      const waiting = p.app.upstream.throttle.depth
      const settled = rss()
      const answered = snapshot()
      await p.app.close()
      await Promise.all(posts)
      return {
        scenario: name,
        uploadsMiB: 40 * 25,
        waitingCalls: waiting,
        answersWhileWaiting: answered,
        rssBeforeMiB: Math.round(before),
        rssPeakMiB: Math.round(peak),
        rssWhileWaitingMiB: Math.round(settled),
      }
    }
    if (name === 'memo') {
      const p = await proxy(up.url)
      const cache = p.app.cache
      const req = (i: number) => ({ rawPath: '/jobs', rawQuery: `?keyword=${'k'.repeat(8000)}&page=${i}`, cacheControl: undefined, client: 'b', signal: () => new AbortController().signal })
      cache.lookup(req(-1))
      gc()
      const heap0 = process.memoryUsage().heapUsed / MiB
      const before = rss()
      for (let i = 0; i < 9_000; i++) cache.lookup(req(i))
      gc()
      const heap1 = process.memoryUsage().heapUsed / MiB
      const after = rss()
      await p.app.close()
      return { scenario: name, urls: 9_000, heapGrownMiB: Math.round(heap1 - heap0), rssBeforeMiB: Math.round(before), rssAfterMiB: Math.round(after) }
    }
    throw new Error(`unknown scenario ${name}`)
  } finally {
    clearInterval(sampler)
    up.server.closeAllConnections()
    up.server.close()
  }
}

const only = process.argv[2]
if (only) {
  const out = await scenario(only)
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(0)
} else {
  const rows: string[] = ['| scenario | result |', '| --- | --- |']
  for (const name of ['big-get', 'bodies', 'memo']) {
    const child = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, name], { encoding: 'utf8', env: process.env, timeout: 120_000 })
    const line = child.stdout.trim().split('\n').pop() ?? ''
    rows.push(`| ${name} | ${line || `failed: ${child.stderr.slice(0, 300)}`} |`)
  }
  process.stdout.write(rows.join('\n') + '\n')
}
