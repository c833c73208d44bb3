// A bound on the bytes of request bodies the proxy holds at once. A write's body is read whole
// before its call waits for the upstream budget (so that a call resent after a 429 sends the same
// bytes); without a bound, 40 uploads of 25 MiB waiting for the budget held 1.6 GB. Bytes are
// counted as they arrive (a slow client holds only what it sent) and given back when the request's
// answer is over; a body that would pass the bound gets 503 QUEUE_FULL with Retry-After.
import { Transform, type Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { QueueFull, withRetryAfter } from './errors.js'

/** How many bodies of the largest allowed size may be held at once. */
export const HELD_BODIES = 4

export class BodyBudget {
  #held = 0
  constructor(readonly maxBytes: number) {}

  /** bytes of request bodies held now */
  get held(): number {
    return this.#held
  }

  take(n: number): boolean {
    if (this.#held + n > this.maxBytes) return false
    this.#held += n
    return true
  }

  give(n: number): void {
    this.#held = Math.max(0, this.#held - n)
  }

  /** A Fastify preParsing hook that counts each body against this budget. */
  hook(retryAfterSeconds: () => number) {
    return (request: FastifyRequest, reply: FastifyReply, payload: Readable, done: (err: Error | null, body?: Readable) => void) => {
      if (!request.headers['content-length'] && !request.headers['transfer-encoding']) return done(null, payload)
      let held = 0
      reply.raw.once('close', () => {
        this.give(held)
        held = 0
      })
      const counter = new Transform({
        transform: (chunk: Buffer, _enc, cb) => {
          if (!this.take(chunk.length)) {
            // the rest of this body is read and dropped, so that the client gets its 503 on a
            // connection still in step
            payload.unpipe(counter)
            payload.resume()
            const full = Object.assign(new QueueFull(), { message: 'Too many request bodies are waiting for the upstream budget; retry later' })
            cb(withRetryAfter(full, retryAfterSeconds()))
            return
          }
          held += chunk.length
          cb(null, chunk)
        },
      })
      payload.on('error', (err) => counter.destroy(err))
      // answered before the body was read (413, 503): the rest is read and dropped, as Node would
      reply.raw.once('finish', () => {
        if (request.raw.complete) return
        payload.unpipe(counter)
        payload.resume()
      })
      done(null, payload.pipe(counter))
    }
  }
}
