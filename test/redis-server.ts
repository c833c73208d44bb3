// A redis-server of its own on a free loopback port, without persistence: the one starter the
// distributed-mode tests (test/redis/) and the bench (bench/run.ts) share.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { freePort } from './helpers.js'

/** redis-server is on PATH (CI installs it; elsewhere the tests that need it skip themselves). */
export const hasRedis = spawnSync('redis-server', ['--version']).status === 0

export interface RedisServer {
  url: string
  port: number
  /** SIGKILL, as a crash would; resolves once the process has exited */
  stop(): Promise<void>
  /** (re)starts it on the same port; rejects when it is not ready within the bounded wait */
  start(): Promise<void>
}

const READY = 'Ready to accept connections'

export async function startRedis(o: { readyTimeoutMs?: number } = {}): Promise<RedisServer> {
  const readyTimeoutMs = o.readyTimeoutMs ?? 10_000
  const port = await freePort()
  let child: ChildProcess | undefined
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
      child = c
      let out = ''
      const collect = (d: Buffer) => (out = (out + String(d)).slice(-4000))
      c.stdout!.on('data', collect)
      c.stderr!.on('data', collect)
      // ready, exited, or out of time: whichever comes first; never an unbounded wait
      await new Promise<void>((resolve, reject) => {
        const fail = (why: string) => {
          clearTimeout(timer)
          c.kill('SIGKILL')
          reject(new Error(`redis-server on port ${port} ${why}; its last output:\n${out}`))
        }
        const timer = setTimeout(() => fail(`was not ready within ${readyTimeoutMs} ms`), readyTimeoutMs)
        c.once('exit', (code) => fail(`exited with code ${code} before it was ready`))
        c.once('error', (err) => fail(`could not start (${err.message})`))
        c.stdout!.on('data', () => {
          if (!out.includes(READY)) return
          clearTimeout(timer)
          c.removeAllListeners('exit')
          resolve()
        })
      })
    },
    async stop() {
      const c = child
      if (!c || c.exitCode !== null || c.signalCode !== null) return
      const exited = new Promise((r) => c.once('exit', r))
      c.kill('SIGKILL')
      await exited
    },
  }
  await server.start()
  return server
}
