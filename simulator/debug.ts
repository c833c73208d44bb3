// Test-only routes of the simulator, under /api/v3/_debug/ (the real API has nothing like them):
// answers that reflect the request's headers (a framework debug page would), and answers too large
// for a cache entry, streamed and held half-way until released.
import { gzipSync } from 'node:zlib'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

const API = '/api/v3'

export interface DebugControl {
  /** lets every held /_debug/big answer finish */
  release(): void
}

export function registerDebugRoutes(app: FastifyInstance): DebugControl {
  let released: Array<() => void> = []
  const control: DebugControl = {
    release() {
      for (const r of released) r()
      released = []
    },
  }

  // ?in=body|header|both (default body), ?status=N, ?encoding=gzip
  const echo = async (request: FastifyRequest, reply: FastifyReply) => {
    const q = request.query as Record<string, string | undefined>
    const where = q.in ?? 'body'
    const status = Number(q.status ?? 200)
    if (where === 'header' || where === 'both') reply.header('x-debug-authorization', request.headers.authorization ?? '')
    let payload: string | Buffer = JSON.stringify(where === 'header' ? { data: { ok: true }, status } : { data: { method: request.method, headers: request.headers }, status })
    if (q.encoding === 'gzip') {
      payload = gzipSync(payload)
      reply.header('content-encoding', 'gzip')
    }
    return reply.code(status).type('application/json').send(payload)
  }
  app.get(`${API}/_debug/echo`, echo)
  app.post(`${API}/_debug/echo`, echo)

  // ?bytes=N: a JSON answer of about N bytes, written in 64 KiB pieces; ?hold=1: the second half
  // waits for release() (or 20 s); ?token=1: the Authorization header's value in the middle, split
  // across two writes
  app.get(`${API}/_debug/big`, async (request, reply) => {
    const q = request.query as Record<string, string | undefined>
    const bytes = Math.max(16, Number(q.bytes ?? 1_000_000))
    const res = reply.raw
    reply.hijack()
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' })
    const piece = Buffer.alloc(64 * 1024, 'x')
    const write = (b: Buffer | string) => (res.write(b) ? Promise.resolve() : new Promise<void>((r) => res.once('drain', () => r())))
    const pause = () => new Promise((r) => setTimeout(r, 5))
    await write('{"data":"')
    let left = bytes - 11
    const half = Math.floor(left / 2)
    let heldDone = false
    while (left > 0 && !res.destroyed) {
      if (!heldDone && left <= half) {
        heldDone = true
        if (q.token === '1') {
          const secret = (request.headers.authorization ?? '').replace(/^Bearer /, '')
          const cut = Math.floor(secret.length / 2)
          await write(secret.slice(0, cut))
          await pause()
          await write(secret.slice(cut))
          await pause()
          left -= secret.length
        }
        if (q.hold === '1') {
          await new Promise<void>((r) => {
            const t = setTimeout(r, 20_000)
            released.push(() => {
              clearTimeout(t)
              r()
            })
          })
        }
      }
      const n = Math.min(left, piece.length)
      await write(piece.subarray(0, n))
      left -= n
    }
    res.end('"}')
  })
  return control
}
