// Real redis-server and real replica processes on loopback, for the distributed-mode tests.
import { spawn, type ChildProcess } from 'node:child_process'
import { DEMO_TOKEN } from '../../simulator/app.js'
import { freePort, sleep, until } from '../helpers.js'

export { freePort }

export { hasRedis, startRedis, type RedisServer } from '../redis-server.js'

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
  await until(
    async () =>
      await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      ),
    15_000,
    50,
  )
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

export const status = async (r: Replica) => (await (await fetch(`${r.url}/_proxy/status`)).json()) as { distributed: { redis: string; budget: string } | null; upstream: { budget_left: number } }
