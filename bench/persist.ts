// CACHE_DIR: start-up with a full 64 MiB cache on disk, hit throughput while a compaction runs,
// and disk bytes per cached byte. `npx tsx bench/persist.ts [--quick]` alone (builds first), or the
// `persist` scenario of `npm run bench`.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { DEMO_TOKEN } from '../src/simulator/app.js'
import { freePort, goal, load, percentile, sleep, startProxy, startSim, table, type Load } from './lib.js'

const MAX = 64 * 1024 * 1024

/** Fills a proxy's cache to CACHE_MAX_BYTES: half the bytes in 110 KB lists, half in ~1.6 KB items. */
async function fill(url: string): Promise<{ entries: number; bytes: number; bodyBytes: number }> {
  const paths: string[] = []
  for (let i = 0; i < 21_000; i++) {
    paths.push(`/api/v3/customers/${(i % 50) + 1}?n=${i}`)
    if (i % 70 === 0) paths.push(`/api/v3/jobs?limit=100&includes[]=customer&includes[]=address&n=${i}`)
  }
  let next = 0
  let bodyBytes = 0
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < paths.length) {
        const r = await fetch(url + paths[next++]!)
        bodyBytes += (await r.arrayBuffer()).byteLength
      }
    }),
  )
  const s = (await (await fetch(`${url}/_proxy/status`)).json()) as { cache: { entries: number; bytes: number } }
  return { entries: s.cache.entries, bytes: s.cache.bytes, bodyBytes }
}

const dirBytes = (dir: string) => readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0)

/** node dist/server.js on `dir`: ms from spawn to /healthz answering, and to a first HIT. */
async function startTimed(simUrl: string, dir: string, probe: string): Promise<{ url: string; serving: number; hit: number; loadMs: number; stop: () => Promise<void> }> {
  const port = await freePort()
  const t0 = performance.now()
  const child = spawn(process.execPath, ['dist/server.js'], {
    env: { PATH: process.env.PATH ?? '', JOBPROGRESS_TOKEN: DEMO_TOKEN, JOBPROGRESS_API_URL: simUrl, PORT: String(port), LOG_LEVEL: 'info', CACHE_DIR: dir, CACHE_MAX_BYTES: String(MAX), UPSTREAM_RATE_LIMIT: '1000000' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (d) => (out += String(d)))
  const url = `http://127.0.0.1:${port}`
  let serving = 0
  for (let i = 0; i < 4000; i++) {
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) {
      serving = performance.now() - t0
      break
    }
    await sleep(2)
  }
  const r = await fetch(url + probe)
  await r.arrayBuffer()
  const hit = r.headers.get('x-cache') === 'HIT' ? performance.now() - t0 : NaN
  const loadMs = Number(/"entries":\d+,"bytes":\d+,"stale":\d+,"ms":(\d+)/.exec(out)?.[1] ?? NaN)
  return {
    url,
    serving,
    hit,
    loadMs,
    stop: () =>
      new Promise<void>((res) => {
        child.once('exit', () => res())
        child.kill('SIGTERM')
      }),
  }
}

export async function persistBench(quick: boolean): Promise<string> {
  const sim = await startSim({ rateLimit: 1e9 })
  const dir = join(mkdtempSync(join(tmpdir(), 'jpp-bench-persist-')), 'cache')
  const probe = '/api/v3/customers/1?n=20950'
  const rounds = quick ? 2 : 3
  const seconds = quick ? 2 : 4

  // 1. a proxy fills its 64 MiB cache, then stops (SIGTERM): the directory a deploy finds
  const empty = await startTimed(sim.url, dir, probe)
  const filled = await fill(empty.url)
  await empty.stop()
  const onDisk = dirBytes(dir)
  log(`persist: filled ${filled.entries} entries, ${(filled.bytes / 2 ** 20).toFixed(1)} MiB; on disk ${(onDisk / 2 ** 20).toFixed(1)} MiB`)

  // 2. start-up with that cache, a few times
  const starts: Array<{ serving: number; hit: number; loadMs: number }> = []
  for (let i = 0; i < (quick ? 2 : 5); i++) {
    const s = await startTimed(sim.url, dir, probe)
    starts.push(s)
    await s.stop()
  }
  const memOnly: number[] = []
  for (let i = 0; i < (quick ? 2 : 3); i++) {
    const s = await startTimed(sim.url, '', probe)
    memOnly.push(s.serving)
    await s.stop()
  }
  const serving = percentile(starts.map((s) => s.serving), 50)
  log(`persist: serving after ${serving.toFixed(0)} ms (memory-only ${percentile(memOnly, 50).toFixed(0)} ms)`)

  // 3. hit throughput: the same proxy (in this process, CACHE_DIR loaded) with and without compactions
  // running back to back, and a memory-only proxy for the cost of the disk tier on hits
  const env = { CACHE_DIR: dir, CACHE_MAX_BYTES: String(MAX), UPSTREAM_RATE_LIMIT: '1000000' }
  const proxy = await startProxy(sim.url, env)
  const plain = await startProxy(sim.url, { CACHE_MAX_BYTES: String(MAX), UPSTREAM_RATE_LIMIT: '1000000' })
  await fetch(plain.url + probe).then((r) => r.arrayBuffer())
  const disk = proxy.app.persistence!.disk!
  await load(proxy.url + probe, 1)
  await load(plain.url + probe, 1)
  const quiet: Load[] = []
  const busy: Load[] = []
  const mem: Load[] = []
  const compactMs: number[] = []
  for (let i = 0; i < rounds; i++) {
    quiet.push(await load(proxy.url + probe, seconds))
    let running = true
    const loop = (async () => {
      while (running) {
        const t = performance.now()
        await disk.compact()
        compactMs.push(performance.now() - t)
      }
    })()
    busy.push(await load(proxy.url + probe, seconds))
    running = false
    await loop
    mem.push(await load(plain.url + probe, seconds))
  }
  const afterCompaction = statSync(join(dir, 'cache.log')).size
  const cacheBytes = proxy.app.cache.store.bytes
  let bodyBytes = 0
  for (const e of proxy.app.cache.store.oldestFirst()) bodyBytes += e.body.length
  await proxy.close()
  await plain.close()
  await sim.close()

  const avg = (xs: Load[], f: (x: Load) => number) => xs.reduce((a, x) => a + f(x), 0) / xs.length
  const drop = 1 - avg(busy, (x) => x.rps) / avg(quiet, (x) => x.rps)
  log(`persist: hits ${avg(quiet, (x) => x.rps).toFixed(0)} req/s quiet, ${avg(busy, (x) => x.rps).toFixed(0)} while compacting (${(drop * 100).toFixed(1)}% drop)`)
  return `## Restarts: CACHE_DIR (bench/persist.ts)

A proxy (\`node dist/server.js\`) filled its cache to CACHE_MAX_BYTES = 64 MiB (${filled.entries} entries:
300 lists of 110 KB and ${filled.entries - 300} items of ~1.6 KB, ${(filled.bytes / 2 ** 20).toFixed(1)} MiB as the cache counts them) and stopped with SIGTERM.

${table(['start-up (spawn to serving)', 'p50 ms', 'worst ms'], [
    ['with the full 64 MiB cache on disk: /healthz answers', serving, Math.max(...starts.map((s) => s.serving))],
    ['... and the first request is a HIT', percentile(starts.map((s) => s.hit), 50), Math.max(...starts.map((s) => s.hit))],
    ['... of which reading the log into memory', percentile(starts.map((s) => s.loadMs), 50), Math.max(...starts.map((s) => s.loadMs))],
    ['memory-only (CACHE_DIR empty), for reference', percentile(memOnly, 50), Math.max(...memOnly)],
  ])}

- start-up with a full cache: **${serving.toFixed(0)} ms** to serving (goal < 1000 ms: ${goal(serving < 1000)}), ${starts.length} starts.

${table(['hit path (autocannon, 50 connections, in-process proxy)', 'req/s', 'p50 ms', 'p99 ms'], [
    ['CACHE_DIR on, no compaction running', avg(quiet, (x) => x.rps), avg(quiet, (x) => x.p50), Math.max(...quiet.map((x) => x.p99))],
    ['CACHE_DIR on, compactions of the whole 64 MiB back to back', avg(busy, (x) => x.rps), avg(busy, (x) => x.p50), Math.max(...busy.map((x) => x.p99))],
    ['memory-only', avg(mem, (x) => x.rps), avg(mem, (x) => x.p50), Math.max(...mem.map((x) => x.p99))],
  ])}

- while compacting: **${(drop * 100).toFixed(1)}%** fewer hits per second (${rounds} alternating rounds of ${seconds} s; ${compactMs.length} compactions, p50 ${percentile(compactMs, 50).toFixed(0)} ms each). A compaction writes 1 MiB steps with the event loop free between them; in normal running it happens once dead records pass a quarter of CACHE_MAX_BYTES, minutes apart at the budget's fill rate.
- disk: **${(onDisk / filled.bytes).toFixed(3)}** bytes on disk per byte of cache (as CACHE_MAX_BYTES counts it) after the fill, ${(afterCompaction / cacheBytes).toFixed(3)} after a compaction; **${(afterCompaction / bodyBytes).toFixed(3)}** per body byte (the rest: each entry's headers, key and fields as JSON, 13 bytes of framing).
`
}

const log = (s: string) => process.stdout.write(s + '\n')

// run alone: npx tsx bench/persist.ts [--quick]
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick')
  if (spawnSync('npm', ['run', 'build'], { stdio: 'inherit' }).status !== 0) process.exit(1)
  const section = await persistBench(quick)
  const file = join('bench/results', `${new Date().toISOString().slice(0, 10)}-persist${quick ? '-quick' : ''}.md`)
  mkdirSync('bench/results', { recursive: true })
  writeFileSync(file, `# CACHE_DIR benchmark\n\n${section}`)
  log(`report: ${file}`)
  process.exit(0)
}
