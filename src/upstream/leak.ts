// The token must never reach a client: an upstream answer that reflects the request's headers (a
// debug page, an error page) would show it. Every answer's headers and body pass through here: the
// token's bytes are masked (same length, so a Content-Length stays true) and the answer is marked,
// so that the cache can refuse it (502 UPSTREAM_LEAKED_TOKEN, never stored).
import { finished, Transform, type Readable, type TransformCallback } from 'node:stream'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'

/** Shorter secrets are not looked for: masking every 't' of every answer would only break them. */
export const MIN_WATCHED_LENGTH = 8

/** Set once the answer (headers or body) was seen to contain the token. */
export interface LeakWatch {
  found: boolean
}

const MASK = 0x2a // '*'

/**
 * The forms in which an answer may reflect the token: as is, JSON-escaped the PHP way (`/` as `\/`,
 * json_encode's default) and percent-encoded. A JWT has none of those characters; an opaque token may.
 */
export function secretForms(secret: string): Buffer[] {
  return [...new Set([secret, secret.replaceAll('/', '\\/'), encodeURIComponent(secret)])].map((f) => Buffer.from(f))
}

/** Masks every occurrence of each secret form in a byte stream, including one split across chunks. */
export class MaskSecret extends Transform {
  readonly #secrets: Buffer[]
  readonly #longest: number
  #carry: Buffer = Buffer.alloc(0)
  readonly #onFound: () => void

  constructor(secret: Buffer | Buffer[], onFound: () => void) {
    super()
    this.#secrets = Array.isArray(secret) ? secret : [secret]
    this.#longest = Math.max(...this.#secrets.map((b) => b.length))
    this.#onFound = onFound
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let buf = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk
    let found = false
    for (const s of this.#secrets) {
      let i = buf.indexOf(s)
      if (i < 0) continue
      if (buf === chunk) buf = Buffer.from(chunk) // never write into a buffer we do not own
      while (i >= 0) {
        buf.fill(MASK, i, i + s.length)
        i = buf.indexOf(s, i + s.length)
      }
      found = true
    }
    if (found) this.#onFound()
    // the last length-1 bytes may start an occurrence that the next chunk completes: hold them back
    const keep = Math.min(this.#longest - 1, buf.length)
    this.#carry = Buffer.from(buf.subarray(buf.length - keep))
    if (buf.length > keep) this.push(buf.subarray(0, buf.length - keep))
    cb()
  }

  override _flush(cb: TransformCallback): void {
    if (this.#carry.length) this.push(this.#carry)
    this.#carry = Buffer.alloc(0)
    cb()
  }
}

function decoderFor(encoding: string): Transform | undefined {
  if (encoding === 'gzip' || encoding === 'x-gzip') return createGunzip()
  if (encoding === 'deflate') return createInflate()
  if (encoding === 'br') return createBrotliDecompress()
  return undefined
}

/**
 * The answer as a client may see it: headers and body with the token masked, `watch.found` set when
 * it was there (`onFound` called once). A compressed body (we ask for identity, but an upstream may
 * not listen) is decompressed first so that it can be looked into; its Content-Encoding and
 * Content-Length go. An encoding we cannot read is refused: the body is replaced by an error.
 */
export function guardAnswer(
  headers: Record<string, string | string[] | undefined>,
  body: Readable,
  secret: string,
  watch: LeakWatch,
  onFound: () => void,
): { headers: Record<string, string | string[] | undefined>; body: Readable } {
  if (secret.length < MIN_WATCHED_LENGTH) return { headers, body }
  let told = false
  const found = () => {
    watch.found = true
    if (!told) {
      told = true
      onFound()
    }
  }
  const out: Record<string, string | string[] | undefined> = {}
  const forms = secretForms(secret)
  const mask = (v: string) => {
    let out = v
    for (const f of forms.map(String)) {
      if (!out.includes(f)) continue
      found()
      out = out.split(f).join('*'.repeat(f.length))
    }
    return out
  }
  for (const [name, value] of Object.entries(headers)) {
    out[name] = value === undefined ? undefined : Array.isArray(value) ? value.map(mask) : mask(String(value))
  }
  const stages: Array<Readable | Transform> = [body]
  const encoding = String(out['content-encoding'] ?? '')
    .trim()
    .toLowerCase()
  if (encoding && encoding !== 'identity') {
    const decoder = decoderFor(encoding)
    delete out['content-encoding']
    delete out['content-length']
    if (decoder) stages.push(decoder)
    else {
      // an encoding we cannot look into: nothing of it reaches a client
      const refuse = new Transform({
        transform(_c, _e, cb) {
          cb(new Error(`upstream answer in an unreadable content-encoding (${encoding})`))
        },
      })
      stages.push(refuse)
    }
  }
  const masker = new MaskSecret(forms, found)
  stages.push(masker)
  chain(stages)
  return { headers: out, body: masker }
}

/**
 * The stages piped one into the next, as stream.pipeline joins them: an error or an early close of
 * any stage (the client left) destroys them all, the upstream body included. Not pipeline itself:
 * Node 20's pipeline aborts an AbortController when it finishes, and the DOMException that makes
 * cost ~45 us on every upstream answer (a profile of sequential misses, issue 14).
 */
function chain(stages: Array<Readable | Transform>): void {
  const destroyAll = (err: Error) => {
    for (const s of stages) if (!s.destroyed) s.destroy(err)
  }
  stages.forEach((s, i) => {
    const next = stages[i + 1]
    if (next) s.pipe(next as Transform)
    finished(s, (err) => {
      if (err) destroyAll(err)
    })
  })
}
