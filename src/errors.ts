// Every error the proxy itself makes: a constant each, and the one JSON envelope of SPEC.md.
import createError from '@fastify/error'

export const ProxyKeyRequired = createError('PROXY_KEY_REQUIRED', 'A proxy key is required: send Authorization: Bearer <key> or X-Proxy-Key', 401)
export const ProxyKeyInvalid = createError('PROXY_KEY_INVALID', 'The proxy key is not valid', 401)
export const AdminDisabled = createError('ADMIN_DISABLED', 'Admin actions are disabled: ADMIN_KEY is not set', 403)
export const AdminKeyInvalid = createError('ADMIN_KEY_INVALID', 'Admin actions need Authorization: Bearer <ADMIN_KEY>', 403)
export const NotFound = createError('NOT_FOUND', 'No such route: %s', 404)
export const BadRequest = createError('BAD_REQUEST', '%s', 400)
export const BodyTooLarge = createError('BODY_TOO_LARGE', 'The request body is larger than %s bytes', 413)
export const UpstreamUnreachable = createError('UPSTREAM_UNREACHABLE', '%s', 502)
export const UpstreamLeakedToken = createError('UPSTREAM_LEAKED_TOKEN', 'The JobProgress answer contained the access token: it was withheld and not stored', 502)
export const UpstreamTimeout = createError('UPSTREAM_TIMEOUT', '%s', 504)
export const QueueFull = createError('QUEUE_FULL', 'Too many calls are waiting for the upstream budget; retry later', 503)
export const QueueTimeout = createError('QUEUE_TIMEOUT', 'Waited too long for the upstream budget; retry later', 503)
export const ShuttingDown = createError('SHUTTING_DOWN', 'The proxy is shutting down', 503)
export const NotCached = createError('NOT_CACHED', 'Cache-Control: only-if-cached, and no cached answer fits the request', 504)
export const HostNotAllowed = createError('HOST_NOT_ALLOWED', '%s', 421)
export const CrossSiteRefused = createError('CROSS_SITE_REFUSED', '%s', 403)

/** Every code the proxy itself answers with (SPEC.md), besides the generic BAD_REQUEST/NOT_FOUND. */
export const PROXY_ERROR_CODES: ReadonlySet<string> = new Set(
  [ProxyKeyRequired, ProxyKeyInvalid, AdminDisabled, AdminKeyInvalid, NotFound, BadRequest, BodyTooLarge, UpstreamUnreachable, UpstreamTimeout, QueueFull, QueueTimeout, ShuttingDown, NotCached].map(
    (E) => new E().code,
  ),
)

// (its own statement, so that codes added by other changes do not touch the same line)
;(PROXY_ERROR_CODES as Set<string>).add(new UpstreamLeakedToken().code)

export interface ErrorBody {
  error: { status_code: number; code: string; message: string }
}

export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { error: { status_code: statusCode, code, message } }
}

/** Errors that carry a Retry-After (seconds) for the client. */
export function withRetryAfter<E extends Error>(err: E, seconds: number): E & { retryAfter: number } {
  return Object.assign(err, { retryAfter: Math.max(1, Math.ceil(seconds)) })
}
