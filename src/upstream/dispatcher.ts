// The adapter that makes @fastify/reply-from send through Upstream.call: reply-from uses any object
// with request(opts, cb) as its undici dispatcher, as is. So pass-through writes take the same road
// as cache fills: token, limiter, 429 handling, timeouts.
import { Readable } from 'node:stream'
import type { Upstream } from './client.js'
import type { CallClass } from './throttle.js'
import type { CallTiming } from './accounting.js'

/** A request body read in full before the call takes a slot: bounded, and resendable after a 429. */
export class BufferedBody extends Readable {
  constructor(readonly buffer: Buffer) {
    super()
  }
  override _read(): void {
    this.push(this.buffer)
    this.push(null)
  }
}

/** What reply-from cannot carry: set as a symbol on the request headers, which it copies as is. */
export const kCall = Symbol('jobprogress-proxy.call')

export interface CallMeta {
  rawPath: string
  rawQuery: string
  client: string
  cls: CallClass
  signal: AbortSignal
  account?: string
  timing?: CallTiming
}

interface ReplyFromRequest {
  method: string
  headers: Record<string | symbol, unknown>
  body?: unknown
}

type Callback = (err: Error | null, res?: { statusCode: number; headers: Record<string, unknown>; body: Readable }) => void

export function replyFromDispatcher(upstream: Upstream) {
  return {
    request(req: ReplyFromRequest, cb: Callback): void {
      const meta = req.headers[kCall] as CallMeta | undefined
      if (!meta) {
        cb(new Error('internal: a pass-through call without its metadata'))
        return
      }
      const body = req.body instanceof BufferedBody ? req.body.buffer : undefined
      upstream
        .call({
          method: req.method,
          path: meta.rawPath,
          query: meta.rawQuery,
          headers: req.headers as Record<string, string>,
          body,
          client: meta.client,
          cls: meta.cls,
          signal: meta.signal,
          account: meta.account,
          timing: meta.timing,
        })
        .then(
          (a) => cb(null, { statusCode: a.statusCode, headers: a.headers, body: a.body }),
          (err: Error) => cb(err),
        )
    },
    // reply-from destroys its dispatcher on close; the Upstream owns and closes the real one.
    destroy(): void {},
    close(): void {},
  }
}
