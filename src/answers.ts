// What every answer leaves behind once it is written: the request counters and log line
// (plugins/request-log.ts) and the per-client counts (clients.ts). They listen here, and one of two
// places tells them: Fastify's onResponse for routed requests, and the hit path in front of the
// router (routes/fast-hits.ts) right after it wrote its answer. One hook instead of one per listener.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { CacheResult } from './cache/http-cache.js'
import type { SplitUrl } from './safety.js'

export interface Answered {
  method: string
  /** the request target as sent (the log line keeps its path only) */
  url: string
  status: number
  /** the checked /api/v3 URL; null for other routes and refused requests */
  api: SplitUrl | null
  cacheResult: CacheResult | 'ABORTED' | undefined
  /** key name, or the client's address when client keys are off ('' before identification) */
  clientName: string
  /** whose budget (client key name or "anonymous"); '' when not an /api/v3 request */
  account: string
  /** from the request's first byte to the answer's last */
  elapsedMs: number
  log: FastifyBaseLogger
}

export type AnswerListener = (a: Answered) => void

export class Answers {
  readonly #listeners: AnswerListener[] = []

  on(listener: AnswerListener): void {
    this.#listeners.push(listener)
  }

  emit(a: Answered): void {
    for (const l of this.#listeners) l(a)
  }
}

/** The onResponse hook that reports Fastify's answers. */
export function registerAnswers(app: FastifyInstance, answers: Answers): void {
  app.addHook('onResponse', (request, reply, done) => {
    answers.emit({
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      api: request.api,
      cacheResult: request.cacheResult,
      clientName: request.clientName,
      account: request.account,
      elapsedMs: reply.elapsedTime,
      log: request.log,
    })
    done()
  })
}

/** Request ids (the log's reqId), one sequence for Fastify (its genReqId option) and the hit path. */
export function requestIds(): () => string {
  let next = 0
  return () => `req-${(next = (next + 1) & 0x7fffffff).toString(36)}`
}
