// Every error the proxy itself answers with: one table (code -> status, message), one @fastify/error
// class per code, and the one JSON envelope of the contract (docs/contract.md#errors-made-by-the-proxy).
// Code elsewhere throws these classes and tests them with `instanceof`, never by comparing code strings.
import createError, { type FastifyError } from '@fastify/error'

/** code -> HTTP status and message (`%s` takes the constructor's argument). The only place a code is declared. */
export const PROXY_ERRORS = {
  BAD_REQUEST: { status: 400, message: '%s' },
  PROXY_KEY_REQUIRED: { status: 401, message: 'A proxy key is required: send Authorization: Bearer <key> or X-Proxy-Key' },
  PROXY_KEY_INVALID: { status: 401, message: 'The proxy key is not valid' },
  CROSS_SITE_REFUSED: { status: 403, message: '%s' },
  ADMIN_DISABLED: { status: 403, message: 'Admin actions are disabled: ADMIN_KEY is not set' },
  ADMIN_KEY_INVALID: { status: 403, message: 'Admin actions need Authorization: Bearer <ADMIN_KEY>' },
  NOT_FOUND: { status: 404, message: 'No such route: %s' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request took too long to arrive' },
  BODY_TOO_LARGE: { status: 413, message: 'The request body is larger than %s bytes' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: '%s' },
  HOST_NOT_ALLOWED: { status: 421, message: '%s' },
  HEADERS_TOO_LARGE: { status: 431, message: 'Request headers are too large' },
  INTERNAL_ERROR: { status: 500, message: 'The proxy failed to handle this request' },
  UPSTREAM_UNREACHABLE: { status: 502, message: '%s' },
  UPSTREAM_LEAKED_TOKEN: { status: 502, message: 'The JobProgress answer contained the access token: it was withheld and not stored' },
  QUEUE_FULL: { status: 503, message: 'Too many calls are waiting for the upstream budget; retry later' },
  QUEUE_TIMEOUT: { status: 503, message: 'Waited too long for the upstream budget; retry later' },
  SHUTTING_DOWN: { status: 503, message: 'The proxy is shutting down' },
  UPSTREAM_TIMEOUT: { status: 504, message: '%s' },
  NOT_CACHED: { status: 504, message: 'Cache-Control: only-if-cached, and no cached answer fits the request' },
} as const satisfies Record<string, { status: number; message: string }>

export type ProxyErrorCode = keyof typeof PROXY_ERRORS

/** An error the proxy answers with as it is: its code is in the table. `retryAfter` (seconds) becomes the header. */
export type ProxyError = FastifyError & { code: ProxyErrorCode; statusCode: number; retryAfter?: number }

/** the constructor's arguments: the `%s` of the message, then `{ cause }` */
type Args = [detail?: unknown, options?: { cause?: unknown }]
type ProxyErrorClass = createError.FastifyErrorConstructor<{ code: ProxyErrorCode; statusCode: number }, Args>
const classes: ProxyErrorClass[] = []
/** every class below (tests walk it) */
export const PROXY_ERROR_CLASSES: readonly ProxyErrorClass[] = classes

function define<C extends ProxyErrorCode>(code: C) {
  const { status, message } = PROXY_ERRORS[code]
  const E = createError<C, number, Args>(code, message, status)
  classes.push(E)
  return E
}

export const BadRequest = define('BAD_REQUEST')
export const ProxyKeyRequired = define('PROXY_KEY_REQUIRED')
export const ProxyKeyInvalid = define('PROXY_KEY_INVALID')
export const CrossSiteRefused = define('CROSS_SITE_REFUSED')
export const AdminDisabled = define('ADMIN_DISABLED')
export const AdminKeyInvalid = define('ADMIN_KEY_INVALID')
export const NotFound = define('NOT_FOUND')
export const RequestTimeout = define('REQUEST_TIMEOUT')
export const BodyTooLarge = define('BODY_TOO_LARGE')
export const HostNotAllowed = define('HOST_NOT_ALLOWED')
export const HeadersTooLarge = define('HEADERS_TOO_LARGE')
export const InternalError = define('INTERNAL_ERROR')
export const UpstreamUnreachable = define('UPSTREAM_UNREACHABLE')
export const UpstreamLeakedToken = define('UPSTREAM_LEAKED_TOKEN')
export const QueueFull = define('QUEUE_FULL')
export const QueueTimeout = define('QUEUE_TIMEOUT')
export const ShuttingDown = define('SHUTTING_DOWN')
export const UpstreamTimeout = define('UPSTREAM_TIMEOUT')
export const NotCached = define('NOT_CACHED')

/** True for an instance of one of the classes above (by class: @fastify/error's `instanceof`). */
export function isProxyError(err: unknown): err is ProxyError {
  return classes.some((E) => err instanceof E)
}

/**
 * The caller went away (its request's signal fired) while its call waited or ran. Not an answer:
 * nobody reads it; the error handler drops the connection.
 */
export class AbortedError extends Error {
  override name = 'AbortError'
}

export interface ErrorBody {
  error: { status_code: number; code: ProxyErrorCode; message: string }
}

export function errorBody(err: Pick<ProxyError, 'statusCode' | 'code' | 'message'>): ErrorBody {
  return { error: { status_code: err.statusCode, code: err.code, message: err.message } }
}

/** Errors that carry a Retry-After (seconds) for the client. */
export function withRetryAfter<E extends Error>(err: E, seconds: number): E & { retryAfter: number } {
  return Object.assign(err, { retryAfter: Math.max(1, Math.ceil(seconds)) })
}
