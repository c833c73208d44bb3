// The audit of writes: one JSON line per POST/PUT/PATCH/DELETE under /api/v3, whatever its outcome:
// time, client name, method, path, status, duration, request id. Never a body, a query, the token or
// a key. To AUDIT_LOG (appended with write(2) before the answer is sent, so a line is never missing
// for an answer a client has seen; reopened on SIGHUP for log rotation), else to the main log with
// "audit":true.
import { closeSync, openSync, writeSync } from 'node:fs'
import type { FastifyBaseLogger, FastifyInstance, onSendHookHandler } from 'fastify'
import { API_PREFIX } from './safety.js'

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export interface AuditEntry {
  time: string
  /** the client key's name, "anonymous" without keys, null when the request was refused before (401) */
  client: string | null
  method: string
  /** without the query */
  path: string
  status: number
  ms: number
  req: string
}

export class AuditLog {
  readonly file: string | undefined
  readonly #log: FastifyBaseLogger
  #fd: number | undefined
  #failing = false
  /** lines written (or logged) since start */
  lines = 0

  constructor(file: string | undefined, log: FastifyBaseLogger) {
    this.file = file
    this.#log = log
    if (file) this.#fd = openSync(file, 'a', 0o640)
  }

  /** After log rotation (SIGHUP): the next lines go to a new file of the same name. */
  reopen(): void {
    if (!this.file) return
    const old = this.#fd
    try {
      this.#fd = openSync(this.file, 'a', 0o640)
      this.#failing = false
    } catch (err) {
      this.#fd = undefined
      this.#log.error({ code: (err as NodeJS.ErrnoException).code }, 'AUDIT_LOG: cannot reopen the file; audit lines go to the main log until it can')
    }
    if (old !== undefined) closeSync(old)
  }

  write(e: AuditEntry): void {
    this.lines++
    if (this.#fd === undefined) {
      this.#toMainLog(e)
      return
    }
    try {
      writeSync(this.#fd, JSON.stringify(e) + '\n')
      this.#failing = false
    } catch (err) {
      // never fatal: the line goes to the main log instead, with the reason once
      if (!this.#failing) this.#log.error({ code: (err as NodeJS.ErrnoException).code }, 'AUDIT_LOG: write failed; audit lines go to the main log')
      this.#failing = true
      this.#toMainLog(e)
    }
  }

  /** pino has its own time; the request id is `reqId`, as on the request's other lines (a `req` field is pino's request serializer's) */
  #toMainLog(e: AuditEntry): void {
    const { time: _time, req, ...rest } = e
    this.#log.info({ audit: true, ...rest, reqId: req }, 'audit')
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd)
    this.#fd = undefined
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditLog
  }
}

export function registerAudit(app: FastifyInstance, file: string | undefined): AuditLog {
  const audit = new AuditLog(file, app.log)
  app.decorate('audit', audit)
  app.addHook('onClose', (_app, done) => {
    audit.close()
    done()
  })
  return audit
}

/**
 * The onSend hook of the /api/v3 pass-through scope (every write method is routed there, refusals by
 * the guards included): the line is written before the answer's first byte. Not a global hook, so
 * cache hits do not run it.
 */
export function auditWrites(audit: AuditLog): onSendHookHandler {
  return (request, reply, payload, done) => {
    const path = request.url.split('?', 1)[0]!
    if (WRITES.has(request.method) && (path === API_PREFIX || path.startsWith(API_PREFIX + '/'))) {
      audit.write({
        time: new Date().toISOString(),
        client: request.account || null,
        method: request.method,
        path: path.slice(0, 1000),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        req: String(request.id),
      })
    }
    done(null, payload)
  }
}
