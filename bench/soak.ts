// npm run soak: mixed load from several clients for SOAK_SECONDS (default 300), against a simulator
// that resets 5% and hangs 2% of calls. Loopback only, bounded in time, stops by itself.
// Report: bench/results/soak-<date>.md
import { mkdirSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { Agent, fetch } from 'undici'
import { describeFds, goal, sleep, startProxyProcess, startSim, table } from './lib.js'

const seconds = Number(process.env.SOAK_SECONDS ?? 300)
if (spawnSync('npm', ['run', 'build'], { stdio: 'inherit' }).status !== 0) process.exit(1)

const sim = await startSim({ rateLimit: 1e9, chaos: { reset: 0.05, hang: 0.02, hangMs: 2500 } })
const keys = ['web:k-web', 'sync:k-sync', 'report:k-report', 'phone:k-phone']
const proxy = await startProxyProcess(sim.url, {
  PROXY_API_KEYS: keys.join(','),
  UPSTREAM_RATE_LIMIT: '1000000',
  UPSTREAM_TIMEOUT_MS: '1000',
  CACHE_TTL_SECONDS: '2',
  CACHE_STALE_SECONDS: '5',
  CACHE_MAX_BYTES: String(16 * 1024 * 1024),
})
const fds = async () => {
  const m = await (await fetch(`${proxy.url}/metrics`)).text()
  return Number(/^process_open_fds (\d+)/m.exec(m)?.[1] ?? NaN)
}
await sleep(500)
const start = { rss: proxy.rssMiB(), fds: await fds(), kinds: describeFds(proxy.pid) }

// the clients' own connection pool, closed before the end figures so that its sockets are not counted
const clients = new Agent({ connections: 16 })
const byOutcome = new Map<string, number>()
const count = (k: string) => byOutcome.set(k, (byOutcome.get(k) ?? 0) + 1)
const writes = { sent: 0, ok: 0, unknown: 0, other: 0, okMarkers: [] as string[], unknownMarkers: [] as string[] }
let requests = 0
let marker = 0
const end = Date.now() + seconds * 1000

function zipfId(): number {
  // a few hot jobs, a long tail
  return Math.min(150, Math.max(1, Math.floor(1 / Math.pow(Math.random(), 1.2))))
}

async function client(key: string): Promise<void> {
  const headers = { 'x-proxy-key': key.split(':')[1]! }
  while (Date.now() < end) {
    const roll = Math.random()
    requests++
    try {
      if (roll < 0.05) {
        const m = `soak-${++marker}`
        writes.sent++
        const r = await fetch(`${proxy.url}/api/v3/jobs/${zipfId()}`, {
          method: 'PUT',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ name: m }),
          signal: AbortSignal.timeout(10_000),
          dispatcher: clients,
        })
        const body = (await r.json()) as { error?: { code: string } }
        count(`PUT ${r.status}${body.error ? ' ' + body.error.code : ''}`)
        if (r.status === 200) {
          writes.ok++
          writes.okMarkers.push(m)
        } else if (r.status === 502 || r.status === 504) {
          writes.unknown++
          writes.unknownMarkers.push(m)
        } else writes.other++
      } else {
        const path = roll < 0.5 ? `/jobs/${zipfId()}` : roll < 0.8 ? `/jobs?limit=10&page=${1 + (zipfId() % 5)}` : `/customers/${1 + (zipfId() % 57)}?includes[]=address`
        const r = await fetch(`${proxy.url}/api/v3${path}`, { headers: roll < 0.1 ? { ...headers, 'cache-control': 'no-cache' } : headers, signal: AbortSignal.timeout(10_000), dispatcher: clients })
        const text = await r.text()
        count(`GET ${r.status}${r.status >= 400 ? ' ' + ((JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '') : ''}`)
      }
    } catch (err) {
      count(`client error ${(err as Error).name}`)
    }
  }
}

const rssSamples: number[] = []
const rssTimer = setInterval(() => rssSamples.push(proxy.rssMiB()), 5000)
await Promise.all(keys.flatMap((k) => [client(k), client(k), client(k)]))
clearInterval(rssTimer)
const third = (i: number) => {
  const part = rssSamples.slice(Math.floor((i * rssSamples.length) / 3), Math.floor(((i + 1) * rssSamples.length) / 3))
  return part.length ? Math.max(...part) : NaN
}
await sleep(3000) // let hung calls finish
await clients.close()
await sleep(11_000) // the proxy's upstream keep-alive (10 s) lets go of idle sockets
const finish = { rss: proxy.rssMiB(), fds: await fds(), kinds: describeFds(proxy.pid) }
const alive = await fetch(`${proxy.url}/healthz`).then(
  (r) => r.ok,
  () => false,
)

// every write accounted for: sent at most once, and every 200 really applied
const sentBodies = sim.calls.filter((c) => c.method === 'PUT').map((c) => c.body)
const seen = (m: string) => sentBodies.filter((b) => b.includes(`"${m}"`)).length
const duplicates = [...writes.okMarkers, ...writes.unknownMarkers].filter((m) => seen(m) > 1).length
const okMissing = writes.okMarkers.filter((m) => seen(m) !== 1).length
const unknownApplied = writes.unknownMarkers.filter((m) => sim.calls.some((c) => c.method === 'PUT' && c.body.includes(`"${m}"`) && c.status === 200)).length

await proxy.close()
await sim.close()

const date = new Date().toISOString().slice(0, 10)
const report = `# Soak report, ${date}

${seconds} s of mixed load from 4 clients (3 connections each): 45% item reads, 30% list reads, 20% customer
reads (10% with Cache-Control: no-cache), 5% writes; the simulator resets 5% and hangs 2% of calls
(2.5 s, past UPSTREAM_TIMEOUT_MS=1000). The proxy ran as \`node dist/server.js\`.

${table(
  ['figure', 'start', 'end'],
  [
    ['RSS, MiB', start.rss, finish.rss],
    ['open file descriptors', start.fds, finish.fds],
  ],
)}

Open descriptors by kind, at the start: ${JSON.stringify(start.kinds)}; at the end: ${JSON.stringify(finish.kinds)}.

RSS every 5 s under load (MiB): ${rssSamples.map((x) => x.toFixed(0)).join(' ')}.

RSS under load, highest in each third of the run (MiB): ${[0, 1, 2].map((i) => third(i).toFixed(1)).join(', ')}; it
grows while the 16 MiB cache and V8's heap fill, then levels: growth from the second to the last third
${(third(2) - third(1)).toFixed(1)} MiB (${goal(third(2) - third(1) < 10)} for "flat": < 10 MiB).

${table(
  ['outcome', 'count'],
  [...byOutcome].sort((a, b) => b[1] - a[1]),
)}

- requests: ${requests}; crashes: ${alive ? 0 : 1} (${goal(alive)})
- writes: ${writes.sent} sent, ${writes.ok} answered 200, ${writes.unknown} answered 502/504 (outcome unknown: ${unknownApplied} of them had been applied upstream), ${writes.other} other
- every write sent upstream at most once: ${goal(duplicates === 0)} (${duplicates} duplicates); every 200 applied exactly once: ${goal(okMissing === 0)}
- open descriptors flat (within 3, measured after the clients closed their connections and the upstream pool went idle): ${goal(Math.abs(finish.fds - start.fds) <= 3)}
`
mkdirSync('bench/results', { recursive: true })
writeFileSync(join('bench/results', `soak-${date}.md`), report)
process.stdout.write(report)
process.exit(alive && duplicates === 0 && okMissing === 0 ? 0 : 1)
