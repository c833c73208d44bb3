// Test fixtures: a real simulator and a real proxy, each on 127.0.0.1:0, and raw-socket helpers.
import { connect, createServer } from 'node:net'
import { Writable } from 'node:stream'
import pino from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { createSimulator, DEMO_TOKEN, type Simulator, type SimulatorOptions } from '../simulator/app.js'

export { DEMO_TOKEN }

export interface Stack {
  sim: Simulator
  app: FastifyInstance
  /** http://127.0.0.1:PORT (the proxy) */
  url: string
  port: number
  /** every log line the proxy wrote, as text */
  logs: string[]
  close(): Promise<void>
}

export interface StackOptions {
  env?: Record<string, string>
  sim?: SimulatorOptions
  now?: () => number
  logLevel?: string
  /** more buildApp options */
  app?: Partial<AppOptions>
}

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const sim = createSimulator(o.sim)
  const simUrl = await sim.listen()
  const loaded = loadConfig({ JOBPROGRESS_TOKEN: DEMO_TOKEN, JOBPROGRESS_API_URL: simUrl, CACHE_DIR: '', ...o.env })
  const logs: string[] = []
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean))
      cb()
    },
  })
  const logger = pino({ level: o.logLevel ?? 'info' }, sink)
  const app = await buildApp({ ...loaded, logger, now: o.now, ...o.app })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  return {
    sim,
    app,
    url: `http://127.0.0.1:${port}`,
    port,
    logs,
    async close() {
      await app.close()
      await sim.close()
    },
  }
}

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  raw: string
}

/** Sends bytes as they are (no client-side normalisation) and reads until the server closes. */
export function rawRequest(port: number, text: string, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('raw request timed out'))
    }, timeoutMs)
    socket.on('data', (c) => chunks.push(c))
    socket.on('error', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      const raw = Buffer.concat(chunks).toString('latin1')
      const [head = '', ...rest] = raw.split('\r\n\r\n')
      const [statusLine = '', ...lines] = head.split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of lines) {
        const i = l.indexOf(':')
        if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body: rest.join('\r\n\r\n'), raw })
    })
    socket.write(text.includes('\r\n\r\n') ? text : text + '\r\n\r\n')
  })
}

/** GET with Connection: close through a raw socket, the path sent byte for byte. */
export function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const h = Object.entries({ host: '127.0.0.1', connection: 'close', ...headers })
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')
  return rawRequest(port, `GET ${path} HTTP/1.1\r\n${h}\r\n\r\n`)
}

/** A TCP port free on loopback right now. */
export async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as { port: number }).port
  await new Promise((r) => srv.close(r))
  return port
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls until fn() is truthy or the time is up. */
export async function until(fn: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 10): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await sleep(stepMs)
  }
}
