// Who is calling: client keys (PROXY_API_KEYS) for /api/v3, the admin key for /_proxy/ actions.
// Keys are compared in constant time, as SHA-256 digests so that lengths leak nothing either.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { ClientKey, Secret } from './config.js'
import { AdminDisabled, AdminKeyInvalid, ProxyKeyInvalid, ProxyKeyRequired } from './errors.js'

const digest = (s: string) => createHash('sha256').update(s).digest()

function bearer(req: { headers: IncomingHttpHeaders }): string | undefined {
  const h = req.headers.authorization
  if (!h) return undefined
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h)
  return m ? m[1] : undefined
}

export class ClientAuth {
  readonly #keys: Array<{ name: string; digest: Buffer }>

  constructor(keys: readonly ClientKey[]) {
    this.#keys = keys.map((k) => ({ name: k.name, digest: digest(k.key.reveal()) }))
  }

  get enabled(): boolean {
    return this.#keys.length > 0
  }

  /**
   * The client's name: its key's name, or its address when client keys are off. Throws 401s.
   * `req` is Fastify's request (ip: the socket's address, no trustProxy) or Node's with the same.
   */
  identify(req: { readonly headers: IncomingHttpHeaders; readonly ip: string }): string {
    if (!this.enabled) return req.ip
    const header = req.headers['x-proxy-key']
    const presented = (Array.isArray(header) ? header[0] : header) ?? bearer(req)
    if (!presented) throw new ProxyKeyRequired()
    const d = digest(presented)
    let found: string | undefined
    for (const k of this.#keys) if (timingSafeEqual(k.digest, d)) found ??= k.name
    if (!found) throw new ProxyKeyInvalid()
    return found
  }
}

export class AdminAuth {
  readonly #digest: Buffer | undefined

  constructor(key: Secret | undefined) {
    this.#digest = key ? digest(key.reveal()) : undefined
  }

  check(req: FastifyRequest): void {
    if (!this.#digest) throw new AdminDisabled()
    const presented = bearer(req)
    if (!presented || !timingSafeEqual(this.#digest, digest(presented))) throw new AdminKeyInvalid()
  }
}
