// npm run bench [-- --quick]: every scenario side by side with its reference, in one run, on this
// machine; the report goes to bench/results/<date>.md. Loopback only; every loop is bounded.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { get as httpGet } from 'node:http'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { DEMO_TOKEN } from '../simulator/app.js'
import { hasRedis, startRedis } from '../test/redis-server.js'
import { barChart, lineChart } from './charts.js'
import { hasNginx, startNginx } from './nginx.js'
import { CONFIGS, RATE, runResource, SCALE, type ResourceRun } from './resource.js'
import { persistBench } from './persist.js'
import { goal, load, percentile, sleep, startBareProcess, startFlags, startProxy, startProxyProcess, startSim, table } from './lib.js'

const quick = process.argv.includes('--quick')
const date = new Date().toISOString().slice(0, 10)
const onlyArg = process.argv.find((a) => a.startsWith('--only='))?.slice(7)
// a partial run never overwrites the day's full report
const baseStem = `${date}${quick ? '-quick' : ''}${onlyArg ? `-only-${onlyArg.replace(/,/g, '-')}` : ''}`
// a second run of the same day and scenarios gets -2, -3 ...: a report is never overwritten
let run = 1
while (existsSync(join('bench/results', `${run === 1 ? baseStem : `${baseStem}-${run}`}.md`))) run++
const stem = run === 1 ? baseStem : `${baseStem}-${run}`
mkdirSync(join('bench/results', stem), { recursive: true })
/** a chart's link from the report, and its file */
const chart = (name: string) => `${stem}/${name}`
const chartFile = (name: string) => join('bench/results', stem, name)
const sections: string[] = []
const log = (s: string) => process.stdout.write(s + '\n')
const wanted = (name: string) => !onlyArg || onlyArg.split(',').includes(name)
/** issue 14's table, filled by the scenarios: each figure beside its reference from the same run */
const summary: Array<Array<string | number>> = []
const fmt = (x: number, digits = 2) => (Number.isInteger(x) ? String(x) : x.toFixed(digits))
const kib = (x: number) => `${(x / 1024).toFixed(1)} KiB`

async function hitPath(): Promise<void> {
  const sim = await startSim({ rateLimit: 1e9 })
  const proxy = await startProxyProcess(sim.url, { UPSTREAM_RATE_LIMIT: '1000000', CACHE_TTL_SECONDS: '3600' })
  const path = '/api/v3/jobs/11?includes[]=address&includes[]=customer'
  const first = await fetch(proxy.url + path)
  const body = Buffer.from(await first.arrayBuffer())
  const headers: Record<string, string> = {}
  for (const h of ['content-type', 'cache-control', 'etag']) headers[h] = first.headers.get(h) ?? ''
  headers['x-cache'] = 'HIT'
  const bare = await startBareProcess(body, headers)
  // the same proxy without the start script's young-generation cap: what that memory setting costs a hit
  const bigYoung = startFlags().filter((f) => !f.startsWith('--max-semi-space-size'))
  const proxyBigYoung = await startProxyProcess(sim.url, { UPSTREAM_RATE_LIMIT: '1000000', CACHE_TTL_SECONDS: '3600' }, bigYoung)
  await fetch(proxyBigYoung.url + path)
  // gzip clients: the proxy sends the stored gzip bytes; the reference sends the same bytes from memory
  const gzFirst = await fetch(proxy.url + path, { headers: { 'accept-encoding': 'gzip' } })
  const gzHeaders = { ...headers, 'content-encoding': gzFirst.headers.get('content-encoding') ?? 'identity', vary: 'Accept-Encoding' }
  const gzBody = await rawBody(proxy.url + path, { 'accept-encoding': 'gzip' })
  const bareGz = await startBareProcess(gzBody, gzHeaders)
  const GZ = { 'accept-encoding': 'gzip' }
  const nginx = hasNginx() ? await startNginx(sim.url, 3600) : undefined
  const seconds = quick ? 2 : 4
  const rounds = quick ? 2 : 5
  const p: Awaited<ReturnType<typeof load>>[] = []
  const b: Awaited<ReturnType<typeof load>>[] = []
  const n: Awaited<ReturnType<typeof load>>[] = []
  const pg: Awaited<ReturnType<typeof load>>[] = []
  const bg: Awaited<ReturnType<typeof load>>[] = []
  await load(proxy.url + path, 1) // warm-up, all
  await load(bare.url + path, 1)
  await load(proxy.url + path, 1, 50, GZ)
  await load(bareGz.url + path, 1, 50, GZ)
  if (nginx) await load(nginx.url + path, 1)
  // CPU per answer of each server process (user + system time over the requests it answered): unlike
  // throughput, it does not depend on how the 2 cores are shared with autocannon in that second
  const cpu = new Map<string, { ms: number; requests: number }>()
  const measured = async (name: string, server: { cpuMs(): number }, url: string, headers: Record<string, string> = {}) => {
    const before = server.cpuMs()
    const r = await load(url, seconds, 50, headers)
    const c = cpu.get(name) ?? { ms: 0, requests: 0 }
    cpu.set(name, { ms: c.ms + server.cpuMs() - before, requests: c.requests + r.total })
    return r
  }
  const py: Awaited<ReturnType<typeof load>>[] = []
  await load(proxyBigYoung.url + path, 1)
  for (let i = 0; i < rounds; i++) {
    p.push(await measured('proxy', proxy, proxy.url + path))
    py.push(await measured('proxy big young', proxyBigYoung, proxyBigYoung.url + path))
    b.push(await measured('bare', bare, bare.url + path))
    if (nginx) n.push(await load(nginx.url + path, seconds))
    pg.push(await measured('proxy gzip', proxy, proxy.url + path, GZ))
    bg.push(await measured('bare gzip', bareGz, bareGz.url + path, GZ))
  }
  const usPer = (name: string) => (1000 * cpu.get(name)!.ms) / cpu.get(name)!.requests
  const sum = (xs: typeof p, f: (x: (typeof p)[0]) => number) => xs.reduce((a, x) => a + f(x), 0) / xs.length
  const ratio = sum(p, (x) => x.rps) / sum(b, (x) => x.rps)
  const p99 = Math.max(...p.map((x) => x.p99))
  const bareP99 = Math.max(...b.map((x) => x.p99))
  const ratioGz = sum(pg, (x) => x.rps) / sum(bg, (x) => x.rps)
  const gzP99 = Math.max(...pg.map((x) => x.p99))
  // bytes on the wire per answer, for this item and for a ~67 KB list page with includes
  const list = '/api/v3/jobs?limit=60&page=1&includes[]=customer&includes[]=address'
  await rawBody(proxy.url + list, {})
  let listGz = await rawBody(proxy.url + list, GZ)
  for (let i = 0; i < 100 && listGz.length === (await rawBody(proxy.url + list, {})).length; i++) {
    await sleep(10) // compressed once stored, in the thread pool
    listGz = await rawBody(proxy.url + list, GZ)
  }
  const listId = await rawBody(proxy.url + list, {})
  log(`hit path: ratio ${ratio.toFixed(3)}, proxy p99 ${p99} ms; gzip clients ratio ${ratioGz.toFixed(3)}`)
  summary.push(
    [
      'cache-hit throughput / a bare Fastify route sending the same bytes',
      `${fmt(
        sum(p, (x) => x.rps),
        0,
      )} req/s`,
      `bare ${fmt(
        sum(b, (x) => x.rps),
        0,
      )} req/s`,
      ratio.toFixed(3),
      '>= 0.9',
      goal(ratio >= 0.9),
    ],
    [
      'the same, gzip clients (stored gzip bytes / bare route sending them)',
      `${fmt(
        sum(pg, (x) => x.rps),
        0,
      )} req/s`,
      `bare ${fmt(
        sum(bg, (x) => x.rps),
        0,
      )} req/s`,
      ratioGz.toFixed(3),
      '>= 0.9',
      goal(ratioGz >= 0.9),
    ],
    [
      "CPU per cache hit (server process) / the bare route's per answer",
      `${usPer('proxy').toFixed(1)} us (gzip clients ${usPer('proxy gzip').toFixed(1)} us)`,
      `bare ${usPer('bare').toFixed(1)} us (gzip bytes ${usPer('bare gzip').toFixed(1)} us)`,
      (usPer('proxy') / usPer('bare')).toFixed(3),
      '<= 1.11 (the CPU side of >= 0.9)',
      goal(usPer('proxy') / usPer('bare') <= 1 / 0.9),
    ],
    ['hit p99 at 50 connections', `${p99} ms (gzip clients ${gzP99} ms)`, `bare ${bareP99} ms`, (p99 / bareP99).toFixed(2), '<= 5 ms', goal(p99 <= 5)],
    [
      'a hit to a client sending Accept-Encoding: gzip',
      `${gzFirst.headers.get('content-encoding') ?? 'identity'}, ${body.length} -> ${gzBody.length} B (item); ${kib(listId.length)} -> ${kib(listGz.length)} (list page)`,
      'identity bytes',
      (listGz.length / listId.length).toFixed(3),
      'compressed',
      goal(gzFirst.headers.get('content-encoding') === 'gzip'),
    ],
  )
  sections.push(`## Hit path (autocannon, 50 connections, ${rounds} alternating rounds of ${seconds} s)

The proxy runs as \`node ${startFlags().join(' ')} dist/server.js\` (the start script; LOG_LEVEL=warn), the reference as a bare Fastify route in its
own process; autocannon runs in a third process.

${table(
  ['server', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx'],
  [
    ['proxy, cache hit', sum(p, (x) => x.rps), sum(p, (x) => x.p50), Math.max(...p.map((x) => x.p99)), p.reduce((a, x) => a + x.non2xx, 0)],
    [
      `proxy, cache hit, without --max-semi-space-size (${bigYoung.join(' ') || 'no flags'})`,
      sum(py, (x) => x.rps),
      sum(py, (x) => x.p50),
      Math.max(...py.map((x) => x.p99)),
      py.reduce((a, x) => a + x.non2xx, 0),
    ],
    ['bare Fastify, same bytes', sum(b, (x) => x.rps), sum(b, (x) => x.p50), Math.max(...b.map((x) => x.p99)), b.reduce((a, x) => a + x.non2xx, 0)],
    ...(nginx ? [['nginx proxy_cache, hit', sum(n, (x) => x.rps), sum(n, (x) => x.p50), Math.max(...n.map((x) => x.p99)), n.reduce((a, x) => a + x.non2xx, 0)]] : []),
    ['proxy, cache hit, gzip client', sum(pg, (x) => x.rps), sum(pg, (x) => x.p50), gzP99, pg.reduce((a, x) => a + x.non2xx, 0)],
    ['bare Fastify, the same gzip bytes', sum(bg, (x) => x.rps), sum(bg, (x) => x.p50), Math.max(...bg.map((x) => x.p99)), bg.reduce((a, x) => a + x.non2xx, 0)],
  ],
)}

- gzip clients: throughput ratio **${ratioGz.toFixed(3)}**; bytes on the wire per answer: this item ${body.length} -> ${gzBody.length} B,
  a list page with includes ${kib(listId.length)} -> ${kib(listGz.length)} (**${(100 * (1 - listGz.length / listId.length)).toFixed(0)}% saved**),
  ${fmt(sum(p, (x) => x.bytes) / 1048576)} MiB/s identity vs ${fmt(sum(pg, (x) => x.bytes) / 1048576)} MiB/s gzip under this load.

![hit path](${chart('hit-path.svg')})

- throughput ratio proxy / bare: **${ratio.toFixed(3)}** (goal >= 0.9: ${goal(ratio >= 0.9)}); per round: ${p.map((x, i) => (x.rps / b[i]!.rps).toFixed(2)).join(', ')}
- CPU per answer, proxy / bare: **${(usPer('proxy') / usPer('bare')).toFixed(3)}** (${usPer('proxy').toFixed(1)} us vs ${usPer('bare').toFixed(1)} us;
  gzip clients ${usPer('proxy gzip').toFixed(1)} us vs ${usPer('bare gzip').toFixed(1)} us). Cache hits are answered in front of Fastify's router
  (src/routes/fast-hits.ts); everything else goes through Fastify.
- the start script's \`--max-semi-space-size=2\` (a 4 MiB young generation, for memory): without it the same proxy
  answered ${fmt(
    sum(py, (x) => x.rps),
    0,
  )} hits/s (ratio to bare **${(sum(py, (x) => x.rps) / sum(b, (x) => x.rps)).toFixed(3)}**) at ${usPer('proxy big young').toFixed(1)} us of CPU per hit
  (**${(usPer('proxy big young') / usPer('bare')).toFixed(3)}** of the bare route's). With the flag V8 scavenges a small young generation
  more often; this row shows what that costs on this machine, in this run.
- proxy hit p99: **${p99} ms** (goal <= 5 ms: ${goal(p99 <= 5)})
- ${nginx ? `ratio proxy / nginx: **${((ratio * sum(b, (x) => x.rps)) / sum(n, (x) => x.rps)).toFixed(3)}** (nginx: one worker process, \`proxy_cache_key $request_uri\`)` : 'nginx `proxy_cache`: skipped, nginx is not installed (apt-get install nginx)'}
`)
  await barChart(
    'Cache-hit throughput (50 connections)',
    'requests per second',
    [{ label: 'proxy', value: sum(p, (x) => x.rps) }, { label: 'bare Fastify', value: sum(b, (x) => x.rps) }, ...(nginx ? [{ label: 'nginx proxy_cache', value: sum(n, (x) => x.rps) }] : [])],
    chartFile('hit-path.svg'),
  )
  await nginx?.close()
  await bare.close()
  await bareGz.close()
  await proxyBigYoung.close()
  await proxy.close()
  await sim.close()
}

/** 50 concurrent GETs of one URL from their own process; when each was read (wall clock, ms). */
async function burstClients(url: string, n: number): Promise<number[]> {
  const clients = spawn(process.execPath, ['bench/clients.mjs', url, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  clients.stdout.on('data', (d) => (out += String(d)))
  await new Promise((r) => clients.once('exit', r))
  return JSON.parse(out) as number[]
}

/** `n` sequential misses of distinct list pages (`limit` jobs each), so that the proxy's miss path is compiled. */
async function warmMisses(proxyUrl: string, n: number, limit = 5): Promise<void> {
  for (let i = 0; i < n; i++) await (await fetch(`${proxyUrl}/api/v3/jobs?limit=${limit}&page=${i}`)).arrayBuffer()
}

async function coalescing(): Promise<void> {
  const sim = await startSim({ rateLimit: 1e9 })
  const proxy = await startProxy(sim.url, { UPSTREAM_RATE_LIMIT: '1000000' })
  const runs = quick ? 3 : 5
  const rows: Array<Array<string | number>> = []
  let worst = 0
  let lastRead = 0
  let callsOk = true
  // a proxy in service has run its miss path many times: 300 misses first, so that the fill code is
  // compiled (cold, each step of a fill took 3-5x as long); run 0 warms the connections and is not reported
  await warmMisses(proxy.url, 300)
  for (let i = 0; i <= runs; i++) {
    const path = `/jobs/${60 + i}`
    sim.inject({ kind: 'delay', path, ms: 200 })
    const done: number[] = []
    const onRequest = (_req: unknown, res: import('node:http').ServerResponse) => res.once('finish', () => done.push(performance.timeOrigin + performance.now()))
    proxy.app.server.on('request', onRequest)
    const received = await burstClients(`${proxy.url}/api/v3${path}`, 50)
    proxy.app.server.off('request', onRequest)
    if (i > 0) lastRead = Math.max(lastRead, Math.max(...received) - sim.calls.find((c) => c.path === path)!.finishedAt!)
    const calls = sim.calls.filter((c) => c.path === path)
    const upstreamDone = calls[0]!.finishedAt!
    const last = Math.max(...done) - upstreamDone
    if (i === 0) continue
    worst = Math.max(worst, last)
    callsOk &&= calls.length === 1
    rows.push([i, calls.length, Number(last.toFixed(2))])
  }
  // nginx with proxy_cache_lock: the same, measured from its clients (nginx's own writes are not visible)
  const nginxRows: Array<Array<string | number>> = []
  let nginxWorst = 0
  if (hasNginx()) {
    const nginx = await startNginx(sim.url, 3600)
    for (let i = 0; i <= runs; i++) {
      const path = `/jobs/${80 + i}`
      sim.inject({ kind: 'delay', path, ms: 200 })
      const received = await burstClients(`${nginx.url}/api/v3${path}`, 50)
      const calls = sim.calls.filter((c) => c.path === path)
      const last = Math.max(...received) - calls[0]!.finishedAt!
      if (i === 0) continue
      nginxWorst = Math.max(nginxWorst, last)
      nginxRows.push([i, calls.length, Number(last.toFixed(2))])
    }
    await nginx.close()
  }
  log(`coalescing: worst last-waiter delay ${worst.toFixed(2)} ms`)
  summary.push([
    'last coalesced waiter after the upstream answer (50 waiters, server side)',
    `${worst.toFixed(2)} ms worst of ${runs} (median ${percentile(
      rows.map((r) => r[2] as number),
      50,
    ).toFixed(2)} ms)`,
    nginxRows.length ? `nginx proxy_cache_lock ${nginxWorst.toFixed(0)} ms (its clients)` : 'nginx not installed',
    '',
    '<= 5 ms',
    goal(worst <= 5),
  ])
  sections.push(`## Coalescing (50 concurrent cold misses, upstream answers in 200 ms)

${table(['run', 'upstream calls', 'last waiter answered, ms after the upstream answer'], rows)}

- one upstream call per run: ${goal(callsOk)}
- last waiter <= 5 ms after the upstream answer completes: worst **${worst.toFixed(2)} ms** (${goal(worst <= 5)}).
  Measured from the simulator's "answer written" to the proxy's "answer written" for each of the 50
  waiters (both in this process, one clock): it includes reading the upstream body and writing 50 answers.
  The 50 clients ran in their own process; the last of them had read its answer ${lastRead.toFixed(2)} ms after the
  upstream answer was written.
${
  nginxRows.length
    ? `
nginx with \`proxy_cache_lock on\`, the same 50 concurrent misses, measured by its clients:

${table(['run', 'upstream calls', 'last client had its answer, ms after the upstream answer'], nginxRows)}

- proxy, measured the same way (by its clients): worst **${lastRead.toFixed(2)} ms**; nginx: worst **${nginxWorst.toFixed(2)} ms**
  (nginx's lock wakes waiters on a timer of up to 500 ms).`
    : '- nginx `proxy_cache_lock`: skipped, nginx is not installed.'
}

![coalescing](${chart('coalescing.svg')})
`)
  await barChart(
    'Last of 50 coalesced waiters answered, after the upstream answer (worst run)',
    'ms, as seen by the clients',
    [{ label: 'proxy', value: lastRead }, ...(nginxRows.length ? [{ label: 'nginx proxy_cache_lock', value: nginxWorst }] : [])],
    chartFile('coalescing.svg'),
  )
  await proxy.close()
  await sim.close()
}

async function missPath(): Promise<void> {
  const sim = await startSim({ rateLimit: 1e9 })
  // the proxy as users run it, in its own process: the simulator and the client share this one
  const proxy = await startProxyProcess(sim.url, { UPSTREAM_RATE_LIMIT: '1000000' })
  const n = quick ? 150 : 400
  const direct: number[] = []
  const via: number[] = []
  // a proxy in service has its miss path compiled: 200 misses first (not measured; other keys than below)
  await warmMisses(proxy.url, 200, 4)
  const cpuBefore = proxy.cpuMs()
  for (let i = 0; i < n; i++) {
    // alternate, distinct keys so that every proxied call is a miss
    let t = performance.now()
    await (await fetch(`${sim.url}/jobs?limit=5&page=${i}`, { headers: { authorization: `Bearer ${DEMO_TOKEN}` } })).arrayBuffer()
    direct.push(performance.now() - t)
    t = performance.now()
    await (await fetch(`${proxy.url}/api/v3/jobs?limit=5&page=${i}`)).arrayBuffer()
    via.push(performance.now() - t)
  }
  const cpuPerMiss = (proxy.cpuMs() - cpuBefore) / n
  const row = (name: string, xs: number[]) => [name, percentile(xs, 50), percentile(xs, 99)]
  const add50 = percentile(via, 50) - percentile(direct, 50)
  const add99 = percentile(via, 99) - percentile(direct, 99)
  log(`miss path: +${add50.toFixed(2)} ms p50, +${add99.toFixed(2)} ms p99`)
  summary.push([
    'miss path added latency over a direct call, p50',
    `+${add50.toFixed(2)} ms (p99 +${add99.toFixed(2)} ms)`,
    `direct ${percentile(direct, 50).toFixed(2)} ms`,
    (percentile(via, 50) / percentile(direct, 50)).toFixed(2),
    '<= 1 ms',
    goal(add50 <= 1),
  ])
  sections.push(`## Miss path (${n} sequential misses, alternating with direct calls; the proxy in its own process)

${table(['route', 'p50 ms', 'p99 ms'], [row('direct to the simulator', direct), row('through the proxy (miss)', via)])}

- added latency: **${add50.toFixed(2)} ms** at p50, **${add99.toFixed(2)} ms** at p99
  (ratio ${(percentile(via, 50) / percentile(direct, 50)).toFixed(2)}x at p50).
- the proxy process used **${cpuPerMiss.toFixed(2)} ms of CPU per miss** (user + system, from /proc; system time includes
  the kernel's loopback delivery of its two extra writes). A miss through the proxy makes two more trips over
  loopback than a direct call (client -> proxy, proxy -> JobProgress, and back); on this machine one
  round trip to an idle process is what the direct call costs (${percentile(direct, 50).toFixed(2)} ms at p50), which is
  most of the added latency before the proxy does any work.
`)
  await proxy.close()
  await sim.close()
}

/** The body bytes exactly as sent (fetch would decode gzip). */
function rawBody(url: string, headers: Record<string, string>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    httpGet(url, { headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve(Buffer.concat(chunks)))
      res.on('error', reject)
    }).on('error', reject)
  })
}

/** a realistic answer: a list page of 60 jobs with two includes (~67 KB of JSON) */
const LIST_PAGE = (k: number) => `/api/v3/jobs?limit=60&page=${1 + (k % 3)}&includes[]=customer&includes[]=address&k=${k}`

interface MemoryRun {
  before: number
  after: number
  bytes: number
  entries: number
  written: number
  identityPerEntry: number
  full?: { rss: number; entries: number; bytes: number; requests: number }
}

async function memoryAt(maxMiB: number, fill: boolean): Promise<MemoryRun> {
  const sim = await startSim({ rateLimit: 1e9 })
  const max = maxMiB * 1024 * 1024
  const child = await startProxyProcess(sim.url, { CACHE_MAX_BYTES: String(max), UPSTREAM_RATE_LIMIT: '100000000', UPSTREAM_MAX_CONCURRENT: '16' })
  const before = child.rssMiB()
  let written = 0
  let i = 0
  // identity clients: what they read is the JSON itself
  const run = (until: () => boolean) =>
    Promise.all(
      Array.from({ length: 16 }, async () => {
        while (!until()) {
          const r = await fetch(child.url + LIST_PAGE(i++), { headers: { 'accept-encoding': 'identity' } })
          written += (await r.arrayBuffer()).byteLength
        }
      }),
    )
  const status = async () => ((await (await fetch(`${child.url}/_proxy/status`)).json()) as { cache: { bytes: number; entries: number } }).cache
  await run(() => written >= 3 * max)
  await sleep(500)
  const after = child.rssMiB()
  const s = await status()
  const writtenFirst = written
  const identityPerEntry = written / i
  let full: MemoryRun['full']
  if (fill) {
    // then on until the cache is full and has churned its own size once more (in stored bytes)
    const target = i + Math.ceil((2 * max) / (s.bytes / s.entries))
    await run(() => i >= target)
    await sleep(500)
    const f = await status()
    full = { rss: child.rssMiB(), entries: f.entries, bytes: f.bytes, requests: i }
  }
  await child.close()
  await sim.close()
  return { before, after, bytes: s.bytes, entries: s.entries, written: writtenFirst, identityPerEntry, full }
}

async function memory(): Promise<void> {
  const sizes = quick ? [16] : [16, 64, 256]
  const rows: Array<Array<string | number>> = []
  let at64: MemoryRun | undefined
  for (const size of sizes) {
    const m = await memoryAt(size, size === 64 || (quick && size === 16))
    if (size === 64 || quick) at64 = m
    rows.push([size, m.written / 1048576, m.before, m.after, m.bytes / 1048576, m.entries, m.entries / (m.bytes / 1048576), m.after - size])
    log(`memory ${size} MiB: RSS ${m.after.toFixed(1)} MiB, ${m.entries} entries${m.full ? `; full: RSS ${m.full.rss.toFixed(1)} MiB, ${m.full.entries} entries` : ''}`)
  }
  const m = at64!
  const size = quick ? 16 : 64
  // the reference: the same entries held uncompressed (identity body + the same bookkeeping), in the same cache size
  // (600 B: the headers, key and bookkeeping an entry is charged besides its body)
  const identityEntries = Math.floor((size * 1048576) / (m.identityPerEntry + 600))
  const held = m.full?.entries ?? m.entries
  const perMiB = m.full ? m.full.entries / (m.full.bytes / 1048576) : m.entries / (m.bytes / 1048576)
  summary.push(
    [
      `RSS after writing 3x CACHE_MAX_BYTES (${size} MiB) of ~${kib(m.identityPerEntry)} list pages`,
      `${m.after.toFixed(0)} MiB, ${m.entries} entries held (all written)`,
      `RSS at start ${m.before.toFixed(0)} MiB`,
      (m.after / size).toFixed(2),
      '<= 144 MiB',
      size === 64 ? goal(m.after <= 144) : 'n/a (quick)',
    ],
    ...(m.full
      ? [
          [
            `the same, written on until the cache is full and churned (${m.full.requests} answers)`,
            `${m.full.rss.toFixed(0)} MiB, ${held} entries held, ${perMiB.toFixed(0)} per MiB`,
            `identity entries would be ~${identityEntries} (main: ~1,150)`,
            (held / Math.max(1, identityEntries)).toFixed(1),
            '5x the entries',
            goal(held >= 5 * 1150),
          ] as Array<string | number>,
        ]
      : []),
  )
  sections.push(`## Memory (CACHE_MAX_BYTES, then 3x that of distinct ~${kib(m.identityPerEntry)} list pages written through the cache)

Identity clients, each answer a distinct key (\`/jobs?limit=60&includes[]=customer&includes[]=address\`); entries are
stored gzip, so 3x CACHE_MAX_BYTES of JSON fills only part of the cache: at ${size} MiB the run goes on until
the cache is full and has churned twice its size in stored bytes.

${table(['CACHE_MAX_BYTES, MiB', 'written, MiB', 'RSS at start, MiB', 'RSS after, MiB', 'cache bytes, MiB', 'entries', 'entries per MiB', 'RSS over the cache size, MiB'], rows)}
${
  m.full
    ? `
- full cache at ${size} MiB: **${m.full.entries} entries** (${perMiB.toFixed(0)} per MiB of cache), RSS **${m.full.rss.toFixed(0)} MiB** after ${m.full.requests} answers
  (${((m.full.requests * m.identityPerEntry) / 1048576).toFixed(0)} MiB of JSON) written.`
    : ''
}

![memory](${chart('memory.svg')})

- at 64 MiB: RSS <= 144 MiB after 3x: ${size === 64 ? goal(m.after <= 144) : 'not measured (--quick runs 16 MiB only)'}; cache bytes <= max at every size: ${goal(rows.every((r) => (r[4] as number) <= (r[0] as number)))}.
  The proxy ran as the start script runs it (\`node ${startFlags().join(' ')} dist/server.js\`); RSS read from /proc.
`)
  await barChart(
    'RSS after churn, by CACHE_MAX_BYTES',
    'MiB',
    rows.flatMap((r) => [
      { label: `${r[0]} MiB: cache`, value: r[4] as number, group: 'cache bytes' },
      { label: `${r[0]} MiB: RSS`, value: r[3] as number, group: 'RSS' },
    ]),
    chartFile('memory.svg'),
  )
}

async function overDemand(limit: number, windowMs: number, windows: number, label: string) {
  const sim = await startSim({ rateLimit: limit, rateWindowMs: windowMs, throttleMode: 'retry-after' })
  const proxy = await startProxy(sim.url, {
    UPSTREAM_RATE_LIMIT: String(limit),
    UPSTREAM_RATE_WINDOW_MS: String(windowMs),
    QUEUE_MAX: '100000',
    QUEUE_TIMEOUT_MS: String(windowMs * (windows + 5)),
  })
  const statuses = new Map<number, number>()
  const pending: Promise<void>[] = []
  const t0 = Date.now()
  let k = 0
  for (let w = 0; w < windows; w++) {
    for (let i = 0; i < limit * 10; i++) {
      pending.push(
        fetch(`${proxy.url}/api/v3/jobs?limit=1&k=${k++}`)
          .then(async (r) => {
            await r.arrayBuffer()
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
          })
          .catch(() => undefined),
      )
    }
    await sleep(windowMs)
  }
  const end = t0 + windows * windowMs
  const served = sim.calls.filter((c) => c.status === 200 && c.time < end).length
  const goodput = served / (limit * windows)
  const upstream429 = sim.throttled
  await proxy.close() // the calls still queued get 503 SHUTTING_DOWN
  await Promise.all(pending)
  await sim.close()
  return { label, served, goodput, upstream429, client429: statuses.get(429) ?? 0 }
}

async function throttle(): Promise<void> {
  const windows = quick ? 3 : 5
  const a = await overDemand(5, 1000, windows, '5 per 1 s')
  const b = await overDemand(60, quick ? 3000 : 6000, quick ? 2 : windows, `60 per ${quick ? 3 : 6} s (60/min scaled)`)
  for (const r of [a, b]) log(`over-demand ${r.label}: goodput ${r.goodput.toFixed(3)}, upstream 429s ${r.upstream429}`)

  // burst after an idle window: the budget's limiter against the same proxy with no budget to speak
  // of, in its own process, alternating
  const sim = await startSim({ rateLimit: 1e9 })
  const burstSpread = async (limit: string) => {
    const proxy = await startProxyProcess(sim.url, { UPSTREAM_RATE_LIMIT: limit, UPSTREAM_RATE_WINDOW_MS: '1000', UPSTREAM_MAX_CONCURRENT: '20' })
    const spreads: number[] = []
    for (let round = 0; round < 4; round++) {
      const sent = Date.now()
      await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${proxy.url}/api/v3/jobs/${i + 1}?l=${limit}&r=${round}`).then((r) => r.arrayBuffer())))
      const arrivals = sim.calls.slice(-20).map((c) => c.time)
      if (round > 0) spreads.push(Math.max(...arrivals) - sent) // round 0 opens the connections
      await sleep(1100)
    }
    await proxy.close()
    return spreads
  }
  const spreads = await burstSpread('20')
  const unlimited = await burstSpread('1000000000')
  await sim.close()

  // fairness: client B's single call while client A has a flood queued
  const sim2 = await startSim({ rateLimit: 1e9 })
  const proxy2 = await startProxy(sim2.url, { PROXY_API_KEYS: 'a:key-a,b:key-b', UPSTREAM_RATE_LIMIT: '5', UPSTREAM_RATE_WINDOW_MS: '1000', QUEUE_TIMEOUT_MS: '120000' })
  const flood = Array.from({ length: 200 }, (_, i) =>
    fetch(`${proxy2.url}/api/v3/jobs?k=${i}`, { headers: { 'x-proxy-key': 'key-a' } })
      .then((r) => r.arrayBuffer())
      .catch(() => undefined),
  )
  await sleep(2300) // A's flood has been running for two windows
  const tB = Date.now()
  const sentBefore = sim2.calls.length
  await (await fetch(`${proxy2.url}/api/v3/customers/1`, { headers: { 'x-proxy-key': 'key-b' } })).arrayBuffer()
  const slots = (Date.now() - tB) / (1000 / 5)
  const ahead = sim2.calls.findIndex((c) => c.path === '/customers/1') - sentBefore
  await proxy2.close()
  await Promise.all(flood)
  await sim2.close()
  log(`burst spread ${Math.max(...spreads)} ms; fairness: ${ahead} calls ahead of B, ${slots.toFixed(2)} slots of time`)

  sections.push(`## Budget (sustained over-demand: distinct keys, 10x the budget each window)

${table(
  ['budget', 'windows', 'upstream 200s in the period', 'goodput (of the budget)', 'upstream 429s', 'client 429s'],
  [
    [a.label, windows, a.served, a.goodput, a.upstream429, a.client429],
    [b.label, quick ? 2 : windows, b.served, b.goodput, b.upstream429, b.client429],
  ],
)}

- goodput >= 0.95: ${goal(a.goodput >= 0.95 && b.goodput >= 0.95)}; 0 upstream 429s: ${goal(a.upstream429 + b.upstream429 === 0)}; 0 client 429s: ${goal(a.client429 + b.client429 === 0)}
- burst of 20 (= the budget) after an idle window, UPSTREAM_MAX_CONCURRENT=20, last call at the simulator after
  ${spreads.map((x) => `${x} ms`).join(', ')} (goal <= 50 ms: ${goal(Math.max(...spreads) <= 50)}); the same proxy with a budget of
  a billion (the reference: no limiter effect): ${unlimited.map((x) => `${x} ms`).join(', ')}. The limiter adds
  ${(percentile(spreads, 50) - percentile(unlimited, 50)).toFixed(0)} ms at the median; the rest is 20 concurrent requests through the proxy
  on this 2-core machine. With the default concurrency of 4 a burst goes out 4 at a time, as fast as JobProgress answers.
- fairness: client B's single call while A has 200 misses queued went upstream after **${ahead} of A's calls**
  (goal <= 2 slots: ${goal(ahead <= 2)}); in time it waited ${slots.toFixed(2)} slot-lengths (window / limit): the
  sliding window returns slots one window after each call, so A's bursts come back together and the wait for the
  next free slot is up to a window, however short the queue ahead.
`)
}

// ---- a realistic day, time-scaled 10x: 60 calls per 6 s, TTL 6 s
function zipfSampler(items: string[], exponent = 1): () => string {
  const weights = items.map((_, i) => 1 / Math.pow(i + 1, exponent))
  const total = weights.reduce((a, b) => a + b, 0)
  const cumulative: number[] = []
  let acc = 0
  for (const w of weights) cumulative.push((acc += w / total))
  return () => {
    const r = Math.random()
    let lo = 0
    let hi = cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cumulative[mid]! < r) lo = mid + 1
      else hi = mid
    }
    return items[lo]!
  }
}

const RESOURCES = [
  ...Array.from({ length: 150 }, (_, i) => `/jobs/${i + 1}`),
  ...Array.from({ length: 57 }, (_, i) => `/customers/${i + 1}`),
  ...Array.from({ length: 10 }, (_, i) => `/jobs?limit=10&page=${i + 1}`),
  ...Array.from({ length: 6 }, (_, i) => `/customers?limit=10&page=${i + 1}`),
  ...Array.from({ length: 77 }, (_, i) => `/jobs/${i + 1}/notes`),
].sort(() => Math.random() - 0.5)

function withIncludes(path: string): string {
  if (!/^\/(jobs|customers)\/\d+$/.test(path) || Math.random() < 0.5) return path
  const names = path.startsWith('/jobs') ? ['address', 'customer', 'reps'] : ['address', 'phones', 'rep']
  const chosen = names.filter(() => Math.random() < 0.6).sort(() => Math.random() - 0.5)
  return chosen.length ? `${path}?${chosen.map((n) => `includes[]=${n}`).join('&')}` : path
}

async function workload(mode: 'proxy' | 'direct' | 'nginx', seconds: number) {
  const sim = await startSim({ rateLimit: 60, rateWindowMs: 6000, throttleMode: 'bare' })
  let apiBase = sim.url
  let close = async () => undefined as unknown
  const headers: Record<string, string> = {}
  if (mode === 'proxy') {
    const p = await startProxyProcess(sim.url, {
      UPSTREAM_RATE_LIMIT: '60',
      UPSTREAM_RATE_WINDOW_MS: '6000',
      CACHE_TTL_SECONDS: '6',
      CACHE_STALE_SECONDS: '60',
      QUEUE_TIMEOUT_MS: '60000',
      QUEUE_MAX: '100000',
    })
    apiBase = `${p.url}/api/v3`
    close = () => p.close()
  } else if (mode === 'nginx') {
    const n = await startNginx(sim.url, 6)
    apiBase = `${n.url}/api/v3`
    close = () => n.close()
  } else {
    headers.authorization = `Bearer ${DEMO_TOKEN}`
  }
  const pick = zipfSampler(RESOURCES)
  const latencies: number[] = []
  let served = 0
  let client429 = 0
  let failed = 0
  const end = Date.now() + seconds * 1000
  // 4 apps x 2 loops, each about 3 requests a second: ~24/s of demand against 10/s of budget
  const loop = async () => {
    while (Date.now() < end) {
      const write = Math.random() < 0.05
      const path = write ? `/jobs/${1 + Math.floor(Math.random() * 150)}` : withIncludes(pick())
      const t0 = performance.now()
      for (let attempt = 0; attempt < 30; attempt++) {
        const r = await fetch(apiBase + path, write ? { method: 'PUT', headers: { ...headers, 'content-type': 'application/json' }, body: '{"name":"w"}' } : { headers }).catch(() => undefined)
        const text = r ? await r.text() : ''
        const throttled = r && (r.status === 429 || (r.status === 500 && text.includes('Too Many Attempts')))
        if (throttled) {
          client429++
          const ra = Number(r.headers.get('retry-after'))
          await sleep(ra > 0 ? ra * 1000 : 1000) // what an app calling JobProgress directly has to do
          continue
        }
        if (r && r.status < 500) served++
        else failed++
        break
      }
      latencies.push(performance.now() - t0)
      await sleep(Math.random() * 600)
    }
  }
  await Promise.all(Array.from({ length: 8 }, loop))
  const calls = sim.calls.length
  const upstream429 = sim.throttled
  await close()
  await sim.close()
  return { mode, served, calls, perCall: served / calls, upstream429, client429, failed, p95: percentile(latencies, 95) }
}

async function realistic(): Promise<void> {
  const seconds = quick ? 10 : 36
  const modes: Array<'proxy' | 'direct' | 'nginx'> = hasNginx() ? ['proxy', 'direct', 'nginx'] : ['proxy', 'direct']
  const rows = []
  for (const m of modes) {
    const r = await workload(m, seconds)
    log(`workload ${m}: ${r.perCall.toFixed(2)} served per upstream call, ${r.upstream429} upstream 429s, p95 ${r.p95.toFixed(0)} ms`)
    rows.push(r)
  }
  const label = { proxy: 'jobprogress-proxy', direct: 'no proxy (apps retry on 429)', nginx: 'nginx proxy_cache, forced TTL 6 s' }
  sections.push(`## Budget under a realistic workload (${seconds} s, time-scaled 10x: 60 calls per 6 s, TTL 6 s)

Four apps, two loops each, ~24 requests/s of demand against a budget of 10/s: Zipf-distributed keys over
300 resources (jobs, customers, list pages, notes), \`includes[]\` in varied order and form, 5% writes.
JobProgress answers over-use with a 429 without \`Retry-After\`; apps that get one wait a second and retry.

${table(
  ['setup', 'requests served', 'upstream calls', 'served per upstream call', 'upstream 429s', 'client 429s', 'failed', 'p95 latency ms'],
  rows.map((r) => [label[r.mode], r.served, r.calls, r.perCall, r.upstream429, r.client429, r.failed, r.p95]),
)}

![workload](${chart('workload.svg')})
`)
  await barChart(
    'Requests served per upstream call (realistic workload)',
    'served per call',
    rows.map((r) => ({ label: label[r.mode], value: r.perCall })),
    chartFile('workload.svg'),
  )
}

async function scaling(): Promise<void> {
  const sim = await startSim({ rateLimit: 1e9 })
  const proxy = await startProxyProcess(sim.url, { CACHE_MAX_BYTES: String(1024 ** 3), UPSTREAM_RATE_LIMIT: '100000000', UPSTREAM_MAX_CONCURRENT: '32', CACHE_TTL_SECONDS: '3600' })
  const levels = quick ? [1000, 10_000] : [1000, 10_000, 100_000]
  const rows: Array<Array<string | number>> = []
  const points: Array<{ x: number; y: number; series: string }> = []
  let filled = 0
  for (const level of levels) {
    let next = filled
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < level) {
          const k = next++
          await (await fetch(`${proxy.url}/api/v3/jobs/${1 + (k % 150)}?k=${k}`)).arrayBuffer()
        }
      }),
    )
    filled = level
    const child = spawn(process.execPath, ['bench/load-keys.mjs', proxy.url, String(level), String(quick ? 2 : 4)], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.on('data', (d) => (out += String(d)))
    await new Promise((r) => child.once('exit', r))
    const r = JSON.parse(out) as { rps: number; p99: number; non2xx: number }
    const status = (await (await fetch(`${proxy.url}/_proxy/status`)).json()) as { cache: { entries: number; bytes: number } }
    const rss = proxy.rssMiB()
    rows.push([level, status.cache.entries, status.cache.bytes / 1048576, r.rps, r.p99, rss])
    points.push({ x: level, y: r.rps, series: 'hits/s' })
    log(`scaling ${level}: ${r.rps.toFixed(0)} hits/s, RSS ${rss.toFixed(0)} MiB`)
    if (level === 100_000)
      summary.push([
        '100k entries held (~1.2 KB items)',
        `${rss.toFixed(0)} MiB RSS, ${status.cache.entries} entries, ${(status.cache.bytes / 1048576).toFixed(1)} MiB of cache`,
        `${rows[0]![5] as number} MiB at 1k entries`,
        (rss / (rows[0]![5] as number)).toFixed(2),
        '<= 300 MiB',
        goal(rss <= 300),
      ])
  }
  await proxy.close()
  await sim.close()
  sections.push(`## Scaling (cache hits over N cached entries chosen at random, 50 connections)

${table(['entries asked for', 'entries held', 'cache MiB', 'hits/s', 'p99 ms', 'RSS MiB'], rows)}

![scaling](${chart('scaling.svg')})
`)
  await lineChart('Hit throughput as cached entries grow', 'cached entries', 'hits per second', points, chartFile('scaling.svg'))
}

async function distributed(): Promise<void> {
  const redis = hasRedis ? await startRedis() : undefined
  if (!redis) {
    sections.push('## Distributed mode\n\nSkipped: redis-server is not installed (apt-get install redis-server).\n')
    return
  }
  // goodput: one replica vs two under the same over-demand, 5 per 1 s, 4 windows
  const windows = quick ? 3 : 4
  const runOverDemand = async (replicas: number) => {
    const sim = await startSim({ rateLimit: 5, rateWindowMs: 1000, throttleMode: 'retry-after' })
    const env = { REDIS_URL: redis.url, UPSTREAM_RATE_LIMIT: '5', UPSTREAM_RATE_WINDOW_MS: '1000', QUEUE_MAX: '100000', QUEUE_TIMEOUT_MS: '60000' }
    const procs = await Promise.all(Array.from({ length: replicas }, () => startProxyProcess(sim.url, env)))
    const t0 = Date.now()
    const pending: Promise<unknown>[] = []
    for (let w = 0; w < windows; w++) {
      for (let i = 0; i < 50; i++)
        pending.push(
          fetch(`${procs[i % replicas]!.url}/api/v3/jobs?limit=1&r=${replicas}&k=${w}-${i}`)
            .then((r) => r.arrayBuffer())
            .catch(() => undefined),
        )
      await sleep(1000)
    }
    const served = sim.calls.filter((c) => c.status === 200 && c.time < t0 + windows * 1000).length
    const throttled = sim.throttled
    await Promise.all(procs.map((p) => p.close()))
    await Promise.all(pending)
    await sim.close()
    return { goodput: served / (5 * windows), throttled }
  }
  const one = await runOverDemand(1)
  const two = await runOverDemand(2)

  // invalidation delay and the Redis tier's hit latency
  const sim = await startSim({ rateLimit: 1e9 })
  const env = { REDIS_URL: redis.url, UPSTREAM_RATE_LIMIT: '1000000' }
  const [a, b] = await Promise.all([startProxyProcess(sim.url, env), startProxyProcess(sim.url, env)])
  const delays: number[] = []
  let staleReads = 0
  for (let i = 0; i < (quick ? 10 : 30); i++) {
    const path = `/api/v3/jobs/${100 + i}`
    await (await fetch(a.url + path)).arrayBuffer() // cached in A (and Redis)
    await (await fetch(b.url + path, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: `{"name":"v${i}"}` })).arrayBuffer()
    const t = performance.now()
    for (let k = 0; k < 1000; k++) {
      const r = await fetch(a.url + path)
      const body = (await r.json()) as { data: { name: string } }
      if (body.data.name === `v${i}`) break
      staleReads++
    }
    delays.push(performance.now() - t)
  }
  const local: number[] = []
  const tier2: number[] = []
  for (let i = 0; i < (quick ? 100 : 300); i++) {
    const path = `/api/v3/customers/${1 + (i % 57)}?k=${i}`
    await (await fetch(a.url + path)).arrayBuffer() // fill (A), stored in Redis too
    let t = performance.now()
    await (await fetch(b.url + path)).arrayBuffer() // B: first-tier miss, Redis-tier hit
    tier2.push(performance.now() - t)
    t = performance.now()
    await (await fetch(b.url + path)).arrayBuffer() // B: first-tier hit
    local.push(performance.now() - t)
  }
  await Promise.all([a.close(), b.close()])
  await sim.close()
  await redis.stop()
  log(`distributed: goodput one ${one.goodput.toFixed(2)}, two ${two.goodput.toFixed(2)}; invalidation p50 ${percentile(delays, 50).toFixed(1)} ms`)
  sections.push(`## Distributed mode (Redis on loopback, replicas as \`node dist/server.js\`)

${table(
  ['replicas', 'goodput (of one budget, 5 per 1 s, 10x over-demand)', 'upstream 429s'],
  [
    [1, one.goodput, one.throttled],
    [2, two.goodput, two.throttled],
  ],
)}

- two replicas together: goodput ${two.goodput.toFixed(2)} of one budget (goal >= 0.95: ${goal(two.goodput >= 0.95)}), ${two.throttled} upstream 429s (goal 0: ${goal(two.throttled === 0)})
- invalidation: a PUT through B, then reads through A until they show the new data: **${staleReads} stale reads** in ${delays.length} runs; the new data was in A's answer after p50 **${percentile(delays, 50).toFixed(1)} ms**, worst **${Math.max(...delays).toFixed(1)} ms** from the PUT's answer (goal < 50 ms: ${goal(Math.max(...delays) < 50)}). That time is the refill itself (a miss through A: Redis tier, lock, upstream call, store): the write's answer waits for the Redis tier's eviction, and the pub/sub message reaches A's first tier before A's next read.

${table(
  ['hit from', 'p50 ms', 'p99 ms'],
  [
    ["the replica's own first tier (lru-cache)", percentile(local, 50), percentile(local, 99)],
    ['the Redis tier (first-tier miss)', percentile(tier2, 50), percentile(tier2, 99)],
  ],
)}

- added latency of a Redis-tier hit over a first-tier hit: **${(percentile(tier2, 50) - percentile(local, 50)).toFixed(2)} ms** at p50.
`)
}

async function resourceAware(): Promise<void> {
  const seconds = quick ? 12 : 30
  const runs: ResourceRun[] = []
  // five times the budget with every configuration, then three times with none and all
  const plan: Array<[(typeof CONFIGS)[number], number]> = [...CONFIGS.map((c) => [c, RATE] as [(typeof CONFIGS)[number], number]), [CONFIGS[0]!, RATE * 0.6], [CONFIGS[4]!, RATE * 0.6]]
  for (const [c, rate] of plan) {
    const r = await runResource(c, seconds, rate)
    log(`resource ${c.name} at ${rate}/s: ${r.perCall.toFixed(2)} answers per call, ${r.calls} calls, p50 ${r.p50.toFixed(0)} ms, ${r.wrong} wrong, ${r.upstream429} upstream 429s`)
    runs.push(r)
  }
  const all = runs.find((r) => r.config.startsWith('+ widening') && r.rate === RATE)!
  const none = runs[0]!
  const wrong = runs.reduce((a, r) => a + r.wrong, 0)
  sections.push(`## Resource-aware cache: answers per upstream call, each lever on and off (${seconds} s per run, time-scaled ${SCALE}x)

The budget is 60 calls per 3 s and the TTL 3 s (60 per minute and 60 s, ${SCALE}x faster); the simulator
answers in 10 ms. Requests arrive at random (Poisson) at ${RATE} a second, five times the budget (the last two
rows: ${RATE * 0.6}, three times): Zipf-popular jobs (150, s = 1.1: 60%) and customers (57: 25%), each with 0-2 of a
few \`includes[]\` in any order and in any of the three query forms, list pages with 0-1 include (10%), and 5%
updates (PUT) of popular jobs and customers. Every 200 is compared with what the simulator answers for
that exact request at that moment (the **oracle**, an in-process render that is not a call): the answer
must be the same JSON, key order included (pagination links compared by meaning). A difference counts as
**raced** when only fields of a resource updated within the TTL differ (a read that crossed a write), else as **wrong**.

${table(
  ['levers', 'demand / budget', 'answers', 'upstream calls', 'answers per call', 'GET hits', 'p50 ms', 'p95 ms', '503s', 'upstream 429s', 'checked by the oracle', 'wrong', 'raced'],
  runs.map((r) => [
    r.config,
    `${(r.rate / 20).toFixed(0)}x`,
    r.answers,
    r.calls,
    r.perCall,
    `${(r.hitRatio * 100).toFixed(0)}%`,
    r.p50,
    r.p95,
    r.unavailable,
    r.upstream429,
    r.checked,
    r.wrong,
    r.raced,
  ]),
)}

- all levers: **${all.perCall.toFixed(2)} answers per upstream call** (no lever: ${none.perCall.toFixed(2)}; goal >= 3: ${goal(all.perCall >= 3)}), p50 ${all.p50.toFixed(0)} ms (no lever: ${none.p50.toFixed(0)} ms)
- wrong answers over every run: **${wrong}** (goal 0: ${goal(wrong === 0)}); upstream 429s: ${runs.reduce((a, r) => a + r.upstream429, 0)} (goal 0: ${goal(runs.every((r) => r.upstream429 === 0))})
- levers turned off by their checks: ${runs.map((r) => r.status.disabled.length).reduce((a, b) => a + b, 0)}; what the levers did with all on: ${Object.entries(all.status.stats)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}
${runs.flatMap((r) => r.examples.map((e) => `- wrong (${r.config}): ${e}`)).join('\n')}
`)
}

const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' })
if (build.status !== 0) process.exit(1)
const started = Date.now()
const scenarios: Array<[string, () => Promise<void>]> = [
  ['hit', hitPath],
  ['coalescing', coalescing],
  ['miss', missPath],
  ['memory', memory],
  ['throttle', throttle],
  ['redis', distributed],
  ['workload', realistic],
  ['scaling', scaling],
  ['resource', resourceAware],
  ['persist', async () => void sections.push(await persistBench(quick))],
]
for (const [name, fn] of scenarios) {
  if (!wanted(name)) continue
  log(`-- ${name}`)
  await fn()
}
const header = `# Benchmark report, ${date}${quick ? ' (quick)' : ''}

Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node.js ${process.version}.
Everything on loopback, proxy and references measured in the same run. Took ${((Date.now() - started) / 1000).toFixed(0)} s.
${
  summary.length
    ? `
## Issue 14's figures (each beside its reference from this run)

${table(['figure', 'measured', 'reference, same run', 'ratio', 'goal', ''], summary)}
`
    : ''
}`
mkdirSync('bench/results', { recursive: true })
const file = join('bench/results', `${stem}.md`)
writeFileSync(file, [header, ...sections].join('\n'))
log(`report: ${file}`)
process.exit(0)
