// The one way to JobProgress: a verifying undici Agent, the token, the limiter and the 429 rules.
// The token is added here and nowhere else; nothing else in the proxy sees it.
import { Readable } from 'node:stream'
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import type { Secret } from '../config.js'
import { AbortedError, isProxyError, QueueTimeout, UpstreamTimeout, UpstreamUnreachable, withRetryAfter } from '../errors.js'
import { Throttle, type CallClass, type ThrottleOptions } from './throttle.js'
import { upstreamRequestHeaders, type HeaderMap } from './headers.js'
import { daysLeft, EXPIRY_WARNING_DAYS, jwtExpiry } from './token.js'
import type { CallTiming } from './accounting.js'
import { guardAnswer, type LeakWatch } from './leak.js'

export interface CallOptions {
  method: string
  /** path under the API base, as the client sent it (still percent-encoded), e.g. /jobs/11 */
  path: string
  /**
   * the raw query, '' or '?...', sent byte for byte; a function is asked at the moment the call is
   * sent (a cache fill still queued may change what it asks for; the call tells it that it was sent)
   */
  query: string | (() => string)
  headers: HeaderMap
  body?: Buffer
  client: string
  cls: CallClass
  signal?: AbortSignal
  /** whose budget the call spends: the client key's name, or "anonymous" (default: client) */
  account?: string
  /** the request's Server-Timing figures, added to by the throttle and here */
  timing?: CallTiming
}

export interface Answer {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  /** the token's bytes masked (see leak.ts) */
  body: Readable
  /** found: the answer reflected the token (headers at once, the body as it is read) */
  leak: LeakWatch
}

export interface UpstreamOptions {
  apiUrl: URL
  token: Secret
  timeoutMs: number
  throttle: Omit<ThrottleOptions, 'onError'>
  log: FastifyBaseLogger
  /** for tests and private CAs; undici verifies certificates by default and so do we */
  connect?: Agent.Options['connect']
}

/** One of the last upstream failures, for the dashboard (no query, no headers). */
export interface UpstreamError {
  time: string
  method: string
  path: string
  status: string
}

const PEEK_LIMIT = 64 * 1024
/** a 429 (or legacy throttle) pauses every call at most this many windows, whatever its Retry-After */
export const MAX_PAUSE_WINDOWS = 2

/**
 * The legacy throttle answer of older JobProgress deployments, recognised only by its exact shape:
 * {"error":{"status_code":500,"message":"An internal error occured.","error_details":"Too Many Attempts. in file ..."}}.
 * A 500 that merely contains the words (a write echoing them, a debug page) is not a throttle.
 */
export function isLegacyThrottle(body: Buffer): boolean {
  if (body.length === 0 || body.length > 8192) return false
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    return false
  }
  const error = (parsed as { error?: unknown } | null)?.error as { message?: unknown; error_details?: unknown } | undefined
  return (
    typeof error === 'object' && error !== null && error.message === 'An internal error occured.' && typeof error.error_details === 'string' && error.error_details.startsWith('Too Many Attempts.')
  )
}

/** Retry-After in ms: seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (!v) return undefined
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000
  const at = Date.parse(v)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/**
 * Reads the start of a body, up to `limit` bytes. `complete` when that was the whole body; else `rest`
 * is a stream of the whole body (the bytes read, then the remainder), to be passed on as it is.
 */
async function peek(body: Readable, limit: number): Promise<{ head: Buffer; complete: boolean; rest: Readable }> {
  const chunks: Buffer[] = []
  let size = 0
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  for (;;) {
    const r = await it.next()
    if (r.done) {
      const head = Buffer.concat(chunks)
      return { head, complete: true, rest: Readable.from(head.length ? [head] : []) }
    }
    chunks.push(r.value)
    size += r.value.length
    if (size > limit) break
  }
  async function* whole(): AsyncGenerator<Buffer> {
    try {
      yield* chunks
      for (;;) {
        const r = await it.next()
        if (r.done) return
        yield r.value
      }
    } finally {
      await it.return?.() // the client left: let go of the upstream body too
    }
  }
  return { head: Buffer.concat(chunks), complete: false, rest: Readable.from(whole(), { objectMode: false }) }
}

export class Upstream {
  readonly agent: Agent
  readonly throttle: Throttle
  readonly #o: UpstreamOptions
  readonly #origin: string
  readonly #basePath: string
  #token: Secret
  #closed = false
  #tokenExpiresAt: Date | undefined
  #lastUnauthorizedLog = 0
  /** 401s from JobProgress: the token was revoked or expired */
  unauthorized = 0
  lastUnauthorizedAt: Date | undefined
  /** the last 20 failed calls (5xx, 401, 429, network errors), newest last */
  readonly recentErrors: UpstreamError[] = []
  /** called with every answer's status and duration (seconds), for metrics */
  onAnswer: (status: string, seconds: number) => void = () => undefined
  onThrottled: () => void = () => undefined
  /** called as each call is sent (once per attempt), for per-client and per-route accounting */
  onCall: (o: CallOptions) => void = () => undefined

  constructor(o: UpstreamOptions) {
    this.#o = o
    this.#token = o.token
    this.#tokenExpiresAt = jwtExpiry(o.token.reveal())
    this.checkTokenExpiry()
    this.#origin = o.apiUrl.origin
    this.#basePath = o.apiUrl.pathname.replace(/\/+$/, '')
    this.agent = new Agent({
      keepAliveTimeout: 10_000,
      connections: Math.max(4, o.throttle.maxConcurrent * 2),
      connect: { timeout: Math.min(10_000, o.timeoutMs), ...o.connect },
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    })
    this.throttle = new Throttle({
      ...o.throttle,
      onError: (err) => o.log.error({ err }, 'rate limiter error'),
    })
  }

  /** Replaces the token (JOBPROGRESS_TOKEN_FILE re-read): calls from now on use the new one. */
  setToken(token: Secret): void {
    this.#token = token
    this.#tokenExpiresAt = jwtExpiry(token.reveal())
    this.checkTokenExpiry()
  }

  get tokenExpiresAt(): Date | undefined {
    return this.#tokenExpiresAt
  }

  /** Logs a warning from EXPIRY_WARNING_DAYS before the token's JWT expiry. */
  checkTokenExpiry(now = Date.now()): void {
    const days = daysLeft(this.#tokenExpiresAt, now)
    if (days === undefined || days > EXPIRY_WARNING_DAYS) return
    this.#o.log.warn(
      { expiresAt: this.#tokenExpiresAt!.toISOString(), daysLeft: days },
      days < 0 ? 'the JobProgress token has expired: make a new one under Settings -> Developer' : 'the JobProgress token expires soon: make a new one under Settings -> Developer',
    )
  }

  #noteError(o: CallOptions, status: string): void {
    this.recentErrors.push({ time: new Date().toISOString(), method: o.method, path: o.path.slice(0, 200), status })
    if (this.recentErrors.length > 20) this.recentErrors.shift()
  }

  /**
   * One call through the budget. 429s (and the legacy 500 "Too Many Attempts.") pause the limiter
   * and the call is retried; the caller only ever sees a real answer or one of our errors.
   */
  async call(o: CallOptions): Promise<Answer> {
    const deadline = Date.now() + this.#o.throttle.queueTimeoutMs
    let cls = o.cls
    for (;;) {
      const answer = await this.throttle.run({ client: o.client, cls, signal: o.signal, account: o.account, timing: o.timing }, () => this.#send(o))
      const throttled = await this.#throttled(answer)
      if (!throttled) return answer
      // a pause of an hour (Retry-After: 3600) would stop every client: at most two windows
      const window = this.#o.throttle.windowMs
      const wait = Math.min(parseRetryAfter(answer.headers['retry-after']) ?? window, MAX_PAUSE_WINDOWS * window)
      answer.body.resume() // drain before retrying
      this.throttle.stats.throttled++
      this.onThrottled()
      this.throttle.pause(wait).catch((err: unknown) => this.#o.log.error({ err }, 'rate limiter pause failed'))
      const now = Date.now()
      this.#o.log.info(
        { status: answer.statusCode, pauseMs: wait, retryAfter: answer.headers['retry-after'] ?? null, path: o.path },
        'upstream throttled a call (absorbed): limiter paused, call retried',
      )
      if (now + wait > deadline) {
        throw withRetryAfter(new QueueTimeout(), wait / 1000)
      }
      cls = 'retry'
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.throttle.close()
    await this.agent.close()
  }

  /**
   * true when the answer is surely the upstream's throttle: a 429, or a 500 of the legacy throttle's
   * exact shape (JobProgress did not process the call). Any other 500 is passed on whole: its body,
   * peeked at, is put back in front of the rest of the stream, its length unchanged.
   */
  async #throttled(answer: Answer): Promise<boolean> {
    if (answer.statusCode === 429) return true
    if (answer.statusCode !== 500) return false
    let peeked: Awaited<ReturnType<typeof peek>>
    try {
      peeked = await peek(answer.body, PEEK_LIMIT)
    } catch (err) {
      throw this.mapError(err, 'GET')
    }
    if (peeked.complete && isLegacyThrottle(peeked.head)) {
      answer.body = Readable.from([])
      return true
    }
    answer.body = peeked.rest
    if (peeked.complete) answer.headers['content-length'] = String(peeked.head.length)
    return false
  }

  async #send(o: CallOptions): Promise<{ value: Answer; finished?: Promise<unknown> }> {
    const seq = this.throttle.startedSeq
    const started = performance.now()
    this.onCall(o)
    if (o.timing) o.timing.calls++
    const headers = upstreamRequestHeaders(o.headers)
    const token = this.#token.reveal()
    headers.authorization = `Bearer ${token}`
    headers['accept-encoding'] = 'identity' // an answer we can look into for the token (leak.ts)
    if (o.body) headers['content-length'] = String(o.body.length)
    let res: Dispatcher.ResponseData
    try {
      res = await this.agent.request({
        origin: this.#origin,
        path: this.#basePath + o.path + (typeof o.query === 'string' ? o.query : o.query()),
        method: o.method as Dispatcher.HttpMethod,
        headers,
        body: o.body,
        // no signal: once sent, a call runs to its end. An answer nobody waits for any more still
        // fills the cache, and a write is never cut off half-way (its outcome would be unknown).
      })
    } catch (err) {
      if (o.timing) o.timing.upstreamMs += performance.now() - started
      this.onAnswer(errorLabel(err), (performance.now() - started) / 1000)
      const mapped = this.mapError(err, o.method)
      this.#noteError(o, (mapped as { code?: string }).code ?? 'error')
      throw mapped
    }
    if (o.timing) o.timing.upstreamMs += performance.now() - started
    if (res.statusCode < 100 || res.statusCode > 599) {
      // not HTTP: nothing of it can be passed on (Fastify would refuse the status and answer 500)
      this.onAnswer('invalid', (performance.now() - started) / 1000)
      const dropped = res.body as unknown as Readable
      dropped.on('error', () => undefined) // undici reports the destroy as an abort
      dropped.destroy()
      this.#noteError(o, String(res.statusCode))
      const write = !['GET', 'HEAD', 'OPTIONS'].includes(o.method)
      throw new UpstreamUnreachable(`JobProgress answered with an invalid HTTP status (${res.statusCode}).` + (write ? ' The write may or may not have been applied: check before retrying.' : ''))
    }
    this.onAnswer(String(res.statusCode), (performance.now() - started) / 1000)
    if (res.statusCode >= 500 || res.statusCode === 401 || res.statusCode === 429) this.#noteError(o, String(res.statusCode))
    if (res.statusCode === 401) {
      this.unauthorized++
      this.lastUnauthorizedAt = new Date()
      const now = Date.now()
      if (now - this.#lastUnauthorizedLog >= 60_000) {
        this.#lastUnauthorizedLog = now
        this.#o.log.error({ unauthorizedSoFar: this.unauthorized }, 'JobProgress answered 401: the token was revoked or has expired (clients get the 401 as it is; logged once a minute)')
      }
    }
    // (a 429's "Remaining: 0" is handled by the pause, which knows Retry-After)
    const remaining = Number(res.headers['x-ratelimit-remaining'])
    if (res.statusCode !== 429 && res.headers['x-ratelimit-remaining'] !== undefined && Number.isFinite(remaining)) {
      this.throttle.observeRemaining(remaining, seq).catch((err: unknown) => this.#o.log.error({ err }, 'rate limiter correction failed'))
    }
    const raw = res.body as unknown as Readable
    const leak: LeakWatch = { found: false }
    const guarded = guardAnswer({ ...res.headers }, raw, token, leak, () =>
      this.#o.log.warn({ method: o.method, path: o.path.slice(0, 200), status: res.statusCode }, 'an upstream answer contained the JobProgress token: masked, never stored'),
    )
    const answer: Answer = { statusCode: res.statusCode, headers: guarded.headers, body: guarded.body, leak }
    // the call holds its concurrency slot until its body has been read or dropped
    const finished = new Promise((resolve) => raw.once('close', resolve))
    return { value: answer, finished }
  }

  /** Our error for an undici failure (connect, timeout, reset, broken body). */
  mapError(err: unknown, method: string): Error {
    const write = !['GET', 'HEAD', 'OPTIONS'].includes(method)
    // the caller left, or the limiter refused the call (QUEUE_FULL, QUEUE_TIMEOUT, SHUTTING_DOWN): as it is
    if (isAbort(err) || isProxyError(err)) return err as Error
    const unknownOutcome = write ? ' The write may or may not have been applied: check before retrying.' : ''
    if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
      const before = err instanceof undiciErrors.ConnectTimeoutError
      return new UpstreamTimeout(`JobProgress did not answer within ${this.#o.timeoutMs} ms.` + (before ? ' The call was not sent.' : unknownOutcome), { cause: err })
    }
    const code = (err as { code?: string })?.code ?? 'ERROR'
    const notSent = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
    const tls = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code)
    const what = tls ? 'its TLS certificate could not be verified' : `the connection failed (${code})`
    return new UpstreamUnreachable(`JobProgress could not be reached: ${what}.` + (notSent || tls ? ' The call was not sent.' : unknownOutcome), { cause: err })
  }
}

function errorLabel(err: unknown): string {
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) return 'timeout'
  if (isAbort(err)) return 'aborted'
  return 'error'
}

/** The caller's signal fired: ours (AbortedError), undici's, or the platform's DOMException. */
function isAbort(err: unknown): boolean {
  return err instanceof AbortedError || err instanceof undiciErrors.RequestAbortedError || (err instanceof Error && err.name === 'AbortError')
}
