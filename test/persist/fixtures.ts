// Restart fixtures: the proxy as a real child process (node --import tsx src/server.ts) that can be
// stopped with SIGTERM or SIGKILL and started again on the same CACHE_DIR and simulator; and an
// in-process proxy on a given simulator URL (the URL is part of the files' binding).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { DEMO_TOKEN } from '../../simulator/app.js'
import { freePort, sleep } from '../helpers.js'

export const tempDir = (): string => join(mkdtempSync(join(tmpdir(), 'jpp-persist-')), 'cache')

export interface ProxyChild {
  url: string
  child: ChildProcess
  logs: string[]
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export async function startChild(env: Record<string, string>): Promise<ProxyChild> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, JOBPROGRESS_TOKEN: DEMO_TOKEN, PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: string[] = []
  let buf = ''
  const collect = (d: Buffer) => {
    buf += String(d)
    const lines = buf.split('\n')
    buf = lines.pop()!
    logs.push(...lines.filter(Boolean))
  }
  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the proxy exited: ${logs.join('\n')}`)
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    if (i > 300) throw new Error('the proxy did not start')
    await sleep(30)
  }
  return {
    url,
    child,
    logs,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal)
      return exited
    },
  }
}

export interface InProcess {
  app: FastifyInstance
  url: string
  logs: string[]
  close(): Promise<void>
}

export async function startInProcess(simUrl: string, env: Record<string, string>, now?: () => number): Promise<InProcess> {
  const loaded = loadConfig({ JOBPROGRESS_TOKEN: DEMO_TOKEN, JOBPROGRESS_API_URL: simUrl, ...env })
  const logs: string[] = []
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean))
      cb()
    },
  })
  const app = await buildApp({ ...loaded, logger: pino({ level: 'info' }, sink), now })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  return { app, url: `http://127.0.0.1:${port}`, logs, close: () => app.close() }
}

export async function get(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; cache: string | null; age: number | null; body: string }> {
  const r = await fetch(`${base}/api/v3${path}`, { headers })
  const age = r.headers.get('age')
  return { status: r.status, cache: r.headers.get('x-cache'), age: age === null ? null : Number(age), body: await r.text() }
}
