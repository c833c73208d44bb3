// Every error answer the proxy makes, in the one envelope of src/errors.ts, from four places:
//   - the route error handler: anything a hook or handler threw (ours, Fastify's, a bug),
//   - the 404 handler: a route outside those the proxy has (nothing is sent upstream),
//   - frameworkErrors: the router's own complaints (a malformed URL) before any route runs,
//   - clientErrorHandler: malformed HTTP on the socket, before Fastify sees a request.
// The last two are Fastify constructor options (errorOptions(), spread into Fastify()); the first two
// are set on the instance by registerErrorHandlers(). Both are called from app.ts.
import { STATUS_CODES } from 'node:http'
import { errorCodes, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify'
import {
  AbortedError,
  BadRequest,
  BodyTooLarge,
  errorBody,
  HeadersTooLarge,
  InternalError,
  isProxyError,
  NotFound,
  PROXY_ERRORS,
  RequestTimeout,
  type ProxyError,
  type ProxyErrorCode,
} from './errors.js'

/** What goes into the envelope (and the Retry-After header). */
type Answer = Pick<ProxyError, 'statusCode' | 'code' | 'message' | 'retryAfter'>

/** A Fastify or Node error that is not ours is answered by its status: this code, else 400 BAD_REQUEST. */
const CODE_BY_STATUS: Partial<Record<number, ProxyErrorCode>> = {
  404: 'NOT_FOUND',
  408: 'REQUEST_TIMEOUT',
  413: 'BODY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
}

function byStatus(status: number, message: string): Answer {
  const code = CODE_BY_STATUS[status] ?? 'BAD_REQUEST'
  return { statusCode: PROXY_ERRORS[code].status, code, message }
}

/** Malformed HTTP on the socket, by Node's error code: the error answered (anything else: 400 BAD_REQUEST). */
const SOCKET_ERRORS: Record<string, () => ProxyError> = {
  HPE_HEADER_OVERFLOW: () => new HeadersTooLarge(),
  ERR_HTTP_REQUEST_TIMEOUT: () => new RequestTimeout(),
}

function send(reply: FastifyReply, a: Answer): FastifyReply {
  if (a.retryAfter) reply.header('retry-after', String(a.retryAfter))
  return reply.code(a.statusCode).type('application/json; charset=utf-8').send(errorBody(a))
}

/** The Fastify constructor options that answer errors raised before any route runs. */
export function errorOptions(): Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler'> {
  return {
    frameworkErrors(error, _request, reply) {
      const message = error instanceof errorCodes.FST_ERR_BAD_URL ? 'Malformed percent-encoding in the URL' : error.message
      send(reply as FastifyReply, byStatus(error.statusCode ?? 400, message))
    },
    clientErrorHandler(err, socket) {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy()
        return
      }
      const a = SOCKET_ERRORS[err.code ?? '']?.() ?? new BadRequest('Malformed HTTP request')
      const body = JSON.stringify(errorBody(a))
      socket.end(
        `HTTP/1.1 ${a.statusCode} ${STATUS_CODES[a.statusCode]}\r\n` +
          `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      )
    },
  }
}

export function registerErrorHandlers(app: FastifyInstance, o: { bodyLimitBytes: number }): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof AbortedError || err.name === 'AbortError') {
      // the client left: nobody reads an answer, and its connection must not linger
      request.cacheResult = 'ABORTED'
      reply.hijack()
      request.raw.socket?.destroy()
      return
    }
    let a: Answer
    if (isProxyError(err)) a = err
    else if (err instanceof errorCodes.FST_ERR_CTP_BODY_TOO_LARGE) a = new BodyTooLarge(o.bodyLimitBytes)
    else if ((err.statusCode ?? 500) >= 500) {
      request.log.error({ err }, 'unexpected error')
      a = new InternalError()
    } else a = byStatus(err.statusCode!, err.message)
    if (a.statusCode >= 500) request.log.warn({ code: a.code, status: a.statusCode, path: request.url.split('?', 1)[0] }, a.message)
    return send(reply, a)
  })

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0]
    return send(reply, new NotFound(`${request.method} ${path.slice(0, 200)}`))
  })
}
