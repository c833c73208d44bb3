// Shared pieces of the benchmarks: start things on loopback, run autocannon, format tables.
import type autocannon from 'autocannon'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { createSimulator, DEMO_TOKEN, type Simulator, type SimulatorOptions } from '../simulator/app.js'
import { freePort } from '../test/helpers.js'

export { freePort }

export interface Proxy {
  app: FastifyInstance
  url: string
  close(): Promise<void>
}

export async function startSim(o: SimulatorOptions = {}): Promise<Simulator> {
  const sim = createSimulator(o)
  await sim.listen()
  return sim
}

export async function startProxy(simUrl: string, env: Record<string, string> = {}): Promise<Proxy> {
  const loaded = loadConfig({ JOBPROGRESS_TOKEN: DEMO_TOKEN, JOBPROGRESS_API_URL: simUrl, CACHE_DIR: '', ...env })
  const app = await buildApp({ ...loaded, logger: pino({ level: 'silent' }) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  return { app, url: `http://127.0.0.1:${port}`, close: () => app.close() }
}

export interface Child {
  url: string
  pid: number
  /** the process's RSS in MiB, from /proc */
  rssMiB(): number
  /** CPU time the process has used (user + system), ms, from /proc */
  cpuMs(): number
  close(): Promise<void>
}

const TICKS_PER_SECOND = 100 // USER_HZ on Linux

function cpuMsOf(pid: number): number {
  // fields after the command name (which may hold spaces): utime and stime are the 12th and 13th
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_SECOND
}

function childProcess(cmd: string, args: string[], env: Record<string, string>, urlPattern: RegExp): Promise<Child> {
  const child = spawn(cmd, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${cmd} exited with ${code}: ${out}`)))
    child.stdout.on('data', (d) => {
      out += String(d)
      const m = urlPattern.exec(out)
      if (!m) return
      child.removeAllListeners('exit')
      child.stdout.removeAllListeners('data')
      child.stdout.resume()
      resolve({
        url: m[1]!,
        pid: child.pid!,
        rssMiB: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024,
        cpuMs: () => cpuMsOf(child.pid!),
        close: () =>
          new Promise<void>((r) => {
            child.once('exit', () => r())
            child.kill('SIGTERM')
          }),
      })
    })
  })
}

/** What a process's open descriptors are: kinds, and TCP sockets by peer port and state. */
export function describeFds(pid: number): Record<string, number> {
  const tcp = new Map<string, string>()
  const states: Record<string, string> = { '01': 'established', '06': 'time-wait', '08': 'close-wait', '0A': 'listen' }
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length < 10) continue
      const remotePort = parseInt(f[2]!.split(':')[1]!, 16)
      tcp.set(f[9]!, `tcp ${states[f[3]!] ?? f[3]} to port ${remotePort}`)
    }
  }
  const out: Record<string, number> = {}
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = ''
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`)
    } catch {
      continue
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
    const kind = inode ? (tcp.get(inode) ?? 'socket (not tcp)') : target.replace(/\[\d+\]$/, '').replace(/^\/.*\/.*$/, 'file')
    out[kind] = (out[kind] ?? 0) + 1
  }
  return out
}

/** The Node flags of package.json's start script (`node <flags> dist/server.js`). */
export function startFlags(): string[] {
  const start = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start
  return start.split(/\s+/).filter((w) => w.startsWith('--'))
}

/** The proxy as users run it: node dist/server.js with the start script's flags (run `npm run build` first), logging at warn. */
export async function startProxyProcess(simUrl: string, env: Record<string, string> = {}, flags: string[] = startFlags()): Promise<Child> {
  const port = await freePort()
  const child = await childProcess(
    process.execPath,
    [...flags, '-e', `console.log('http://127.0.0.1:${port}'); import('./dist/server.js').then((m) => m.main())`],
    { JOBPROGRESS_TOKEN: DEMO_TOKEN, JOBPROGRESS_API_URL: simUrl, PORT: String(port), LOG_LEVEL: 'warn', CACHE_DIR: '', ...env },
    /(http:\/\/[\d.:]+)/,
  )
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${child.url}/healthz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return child
    await sleep(25)
  }
  throw new Error('the proxy did not start')
}

/** A bare Fastify route sending the given bytes from memory, in its own process: the hit-path reference. */
export function startBareProcess(body: Buffer, headers: Record<string, string>): Promise<Child> {
  const file = join(mkdtempSync(join(tmpdir(), 'jpp-bench-')), 'body')
  writeFileSync(file, body)
  return childProcess(process.execPath, ['bench/bare-server.mjs', file, JSON.stringify(headers)], {}, /(http:\/\/[\d.:]+)/)
}

export interface Load {
  rps: number
  /** requests answered in the run */
  total: number
  /** response body bytes per second */
  bytes: number
  p50: number
  p99: number
  non2xx: number
}

/** autocannon in its own process, so that the load generator does not share the servers' event loop. */
export async function load(url: string, seconds: number, connections = 50, headers: Record<string, string> = {}): Promise<Load> {
  const bin = join(process.cwd(), 'node_modules/.bin/autocannon')
  const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`])
  const child = spawn(bin, ['--json', '-c', String(connections), '-d', String(seconds), ...h, url], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  child.stdout.on('data', (d) => (out += String(d)))
  await new Promise((r) => child.once('exit', r))
  const r = JSON.parse(out) as autocannon.Result
  return { rps: r.requests.average, total: r.requests.total, bytes: r.throughput.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx }
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}

export function table(head: string[], rows: Array<Array<string | number>>): string {
  const fmt = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v)
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(fmt).join(' | ')} |`)].join('\n')
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function goal(ok: boolean): string {
  return ok ? 'met' : '**not met**'
}
