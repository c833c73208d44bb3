// Real redis-server and real replica processes on loopback, for the distributed-mode tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { DEMO_TOKEN } from '../../src/simulator/app.js'
import { freePort, sleep, until } from '../helpers.js'

export { freePort }

export const hasRedis = spawnSync('redis-server', ['--version']).status === 0


export interface RedisServer {
  url: string
  port: number
  stop(): Promise<void>
  start(): Promise<void>
}

/** A redis-server of the test's own on a free loopback port, no persistence. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] })
      child = c
      let out = ''
      c.stdout!.on('data', (d) => (out += String(d)))
      await until(() => out.includes('Ready to accept connections'), 10_000)
    },
    async stop() {
      const c = child
      if (!c || c.exitCode !== null) return
      const exited = new Promise((r) => c.once('exit', r))
      c.kill('SIGKILL')
      await exited
    },
  }
  await server.start()
  return server
}

export interface Replica {
  url: string
  child: ChildProcess
  out: () => string
  kill(signal?: NodeJS.Signals): Promise<void>
}

/** One proxy replica: a real process (node with the tsx loader) on its own port. */
export async function startReplica(env: Record<string, string>): Promise<Replica> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, CACHE_DIR: '', JOBPROGRESS_TOKEN: DEMO_TOKEN, PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d) => (out += String(d)))
  child.stderr!.on('data', (d) => (out += String(d)))
  const url = `http://127.0.0.1:${port}`
  await until(async () => (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)), 15_000, 50)
  return {
    url,
    child,
    out: () => out,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill(signal)
      await Promise.race([exited, sleep(12_000)])
    },
  }
}

export const status = async (r: Replica) =>
  (await (await fetch(`${r.url}/_proxy/status`)).json()) as { distributed: { redis: string; budget: string } | null; upstream: { budget_left: number } }
