// The resource-aware cache under a realistic mix, each lever on and off, with a correctness oracle:
// every 200 the proxy answers is compared with what the simulator answers for that exact request at
// that moment (rendered in-process, not counted as a call). Only fields a write changed may differ,
// and only within the TTL after that write (a read that raced the write).
import type { Simulator } from '../simulator/app.js'
import { prng } from '../simulator/data.js'
import { percentile, startProxyProcess, startSim } from './lib.js'

/** Time scale: 60 calls per 3 s and a 3 s TTL stand for 60 per minute and a 60 s TTL. */
export const SCALE = 20
const WINDOW_MS = 3000
const TTL_S = 3
/** requests a second (open arrivals): 100 is 5 times the budget of 20 calls a second */
export const RATE = Number(process.env.BENCH_RATE ?? 100)

export interface LeverConfig {
  name: string
  rules: string
}

/** Cumulative, then all on but one. */
export const CONFIGS: LeverConfig[] = [
  { name: 'no lever (exact keys, as before)', rules: '/**!all' },
  { name: 'projection', rules: '/**!covering,/**!widening,/**!write-refresh' },
  { name: '+ write refresh', rules: '/**!covering,/**!widening' },
  { name: '+ covering fills', rules: '/**!widening' },
  { name: '+ widening (all levers)', rules: '' },
  { name: 'all but write refresh', rules: '/**!write-refresh' },
  { name: 'all but covering fills', rules: '/**!covering' },
  { name: 'all but widening', rules: '/**!widening' },
]

export interface ResourceRun {
  config: string
  rate: number
  answers: number
  gets: number
  writes: number
  calls: number
  perCall: number
  hitRatio: number
  p50: number
  p95: number
  unavailable: number
  upstream429: number
  checked: number
  wrong: number
  raced: number
  examples: string[]
  status: { stats: Record<string, number>; disabled: unknown[] }
}

function zipf(n: number, s: number, rnd: () => number): () => number {
  const w = Array.from({ length: n }, (_, i) => 1 / Math.pow(i + 1, s))
  const total = w.reduce((a, b) => a + b, 0)
  const cdf: number[] = []
  let acc = 0
  for (const x of w) cdf.push((acc += x / total))
  return () => {
    const r = rnd()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid]! < r) lo = mid + 1
      else hi = mid
    }
    return lo + 1
  }
}

/** 0-2 of `names`, any order, in one of JobProgress's three query forms. */
function includes(names: readonly string[], max: number, rnd: () => number): string {
  const k = Math.floor(rnd() * (max + 1))
  const pool = [...names]
  const chosen: string[] = []
  for (let i = 0; i < k; i++) chosen.push(pool.splice(Math.floor(rnd() * pool.length), 1)[0]!)
  if (!chosen.length) return ''
  const form = rnd()
  if (form < 0.5) return chosen.map((n) => `includes[]=${n}`).join('&')
  if (form < 0.8) return `includes=${chosen.join(',')}`
  return chosen.map((n, i) => `includes[${i}]=${n}`).join('&')
}

type Json = unknown

/** Pagination links by meaning: path and sorted query. */
function normalLinks(v: Json): Json {
  const links = (v as { meta?: { pagination?: { links?: Record<string, string> } } })?.meta?.pagination?.links
  if (links) {
    for (const [k, l] of Object.entries(links)) {
      const u = new URL(l)
      // includes in any of its forms (includes[]=a, includes[0]=a, includes=a,b) as one set
      const pairs = [...u.searchParams].flatMap(([a, b]) => (/^includes(\[\d*\])?$/.test(a) ? b.split(',').map((x) => `includes[]=${x}`) : [`${a}=${b}`]))
      links[k] = `${u.pathname}?${[...new Set(pairs)].sort().join('&')}`
    }
  }
  return v
}

function kindOf(o: Record<string, unknown>): 'job' | 'customer' | undefined {
  if ('customer_id' in o && 'number' in o) return 'job'
  if ('first_name' in o && 'email' in o) return 'customer'
  return undefined
}

/**
 * The differences between two answers, each as the resource it sits in and the field: undefined when
 * their shapes differ (a key or an item more or less, or in another order): that is always wrong.
 */
function differences(a: Json, b: Json, owner: string | undefined, out: Array<{ owner: string | undefined; field: string }>, field = ''): boolean {
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
    if (a !== b) out.push({ owner, field })
    return true
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as Json[]
    if (a.length !== bb.length) return false
    return a.every((x, i) => differences(x, bb[i], owner, out, field))
  }
  const ao = a as Record<string, unknown>
  const bo = b as Record<string, unknown>
  const ka = Object.keys(ao)
  if (ka.join() !== Object.keys(bo).join()) return false
  const kind = kindOf(ao)
  const me = kind && typeof ao.id === 'number' ? `${kind} ${ao.id}` : owner
  return ka.every((k) => differences(ao[k], bo[k], me, out, k))
}

export async function runResource(config: LeverConfig, seconds: number, rate = RATE, seed = 7): Promise<ResourceRun> {
  const sim: Simulator = await startSim({ rateLimit: 60, rateWindowMs: WINDOW_MS, throttleMode: 'bare', latencyMs: 10 })
  const proxy = await startProxyProcess(sim.url, {
    UPSTREAM_RATE_LIMIT: '60',
    UPSTREAM_RATE_WINDOW_MS: String(WINDOW_MS),
    CACHE_TTL_SECONDS: String(TTL_S),
    CACHE_STALE_SECONDS: String(600 / SCALE),
    QUEUE_TIMEOUT_MS: String(60_000 / SCALE),
    CACHE_RULES: config.rules,
  })
  const api = `${proxy.url}/api/v3`
  const rnd = prng(seed)
  const job = zipf(150, 1.1, rnd)
  const customer = zipf(57, 1.1, rnd)
  const page = zipf(5, 1.2, rnd)
  /** resource -> field -> when a write to it was sent */
  const written = new Map<string, Map<string, number>>()
  const latencies: number[] = []
  const examples: string[] = []
  let answers = 0
  let gets = 0
  let writes = 0
  let hits = 0
  let unavailable = 0
  let checked = 0
  let wrong = 0
  let raced = 0
  let n = 0
  const debug = new Map<string, number>()

  const oracle = async (path: string, body: string) => {
    const truth = await sim.render(path)
    checked++
    const got = normalLinks(JSON.parse(body))
    const want = normalLinks(JSON.parse(truth.body))
    if (JSON.stringify(got) === JSON.stringify(want)) return
    const diffs: Array<{ owner: string | undefined; field: string }> = []
    const now = Date.now()
    const explained =
      truth.status === 200 &&
      differences(got, want, undefined, diffs) &&
      diffs.every((d) => {
        const at = d.owner ? written.get(d.owner)?.get(d.field) : undefined
        return at !== undefined && now - at <= TTL_S * 1000
      })
    if (explained) {
      raced++
      return
    }
    wrong++
    if (examples.length < 5) examples.push(`${path}: ${diffs.map((d) => `${d.owner ?? '?'}.${d.field}`).join(', ') || 'shape differs'}`)
  }

  const one = async () => {
    const r = rnd()
    let path: string
    let init: RequestInit | undefined
    if (r < 0.05) {
      const isJob = rnd() < 0.7
      const id = isJob ? job() : customer()
      const field = isJob ? 'name' : 'first_name'
      path = `/${isJob ? 'jobs' : 'customers'}/${id}`
      init = { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ [field]: `written ${++n}` }) }
      const owner = `${isJob ? 'job' : 'customer'} ${id}`
      if (!written.has(owner)) written.set(owner, new Map())
      const at = Date.now()
      written.get(owner)!.set(field, at)
      written.get(owner)!.set('updated_at', at)
    } else if (r < 0.65) {
      const q = includes(['customer', 'address', 'reps', 'trades'], 2, rnd)
      path = `/jobs/${job()}${q ? '?' + q : ''}`
    } else if (r < 0.9) {
      const q = includes(['address', 'phones', 'rep'], 2, rnd)
      path = `/customers/${customer()}${q ? '?' + q : ''}`
    } else {
      const q = includes(['customer', 'address'], 1, rnd)
      path = `/${rnd() < 0.7 ? 'jobs' : 'customers'}?limit=10&page=${page()}${q ? '&' + q : ''}`
    }
    const t0 = performance.now()
    const res = await fetch(api + path, init).catch(() => undefined)
    const body = res ? await res.text().catch(() => '') : ''
    const ms = performance.now() - t0
    if (!res || res.status >= 500) unavailable++
    else answers++
    if (init) writes++
    else {
      gets++
      latencies.push(ms)
      if (res?.headers.get('x-cache') === 'HIT') hits++
      if (process.env.BENCH_DEBUG) {
        const key = `${res?.headers.get('x-cache')} ${path.split('?')[0]!.replace(/\d+/g, 'N')}`
        debug.set(key, (debug.get(key) ?? 0) + 1)
      }
      if (res?.status === 200) await oracle(path, body)
    }
  }
  // open arrivals (Poisson) from several apps at RATE requests a second: RATE / 20 times the budget
  const start = Date.now()
  const end = start + seconds * 1000
  const pending = new Set<Promise<void>>()
  // arrivals on an absolute schedule: a late timer sends the ones due at once (the demand stays the same)
  let next = start
  while (next < end) {
    while (next <= Date.now() && next < end) {
      const p = one().finally(() => pending.delete(p))
      pending.add(p)
      next += (-Math.log(1 - rnd()) * 1000) / rate
    }
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())))
  }
  await Promise.all(pending)
  const st = (await (await fetch(`${proxy.url}/_proxy/status`)).json()) as { cache: { resource: ResourceRun['status'] } }
  const calls = sim.calls.length
  if (process.env.BENCH_DEBUG) {
    console.log(
      [...debug]
        .sort()
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n'),
    )
    const byRoute = new Map<string, number>()
    for (const c of sim.calls) {
      const k = `${c.method} ${c.path.replace(/\d+/g, 'N')}`
      byRoute.set(k, (byRoute.get(k) ?? 0) + 1)
    }
    console.log([...byRoute].map(([k, v]) => `${k}: ${v}`).join('\n'))
  }
  const upstream429 = sim.throttled
  await proxy.close()
  await sim.close()
  return {
    config: config.name,
    rate,
    answers,
    gets,
    writes,
    calls,
    perCall: answers / calls,
    hitRatio: hits / gets,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    unavailable,
    upstream429,
    checked,
    wrong,
    raced,
    examples,
    status: { stats: st.cache.resource.stats, disabled: st.cache.resource.disabled },
  }
}
