// HTTP helpers for the hardening tests: requests with any Host header (fetch forbids it), and one
// keep-alive connection read answer by answer, so that a desync shows.
import { request as httpRequest } from 'node:http'
import { connect, type Socket } from 'node:net'

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
  text: string
  json: () => unknown
}

/** One request through node:http (no connection reuse), with the headers exactly as given. */
export function send(port: number, o: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: o.method ?? 'GET', path: o.path, headers: o.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        const text = body.toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: () => JSON.parse(text) })
      })
    })
    req.on('error', reject)
    req.end(o.body)
  })
}

/** A raw keep-alive connection: write a request, read exactly one answer (by Content-Length or chunks). */
export class Conn {
  readonly #socket: Socket
  #buf = Buffer.alloc(0)
  #closed = false
  #wake: (() => void) | undefined

  constructor(port: number) {
    this.#socket = connect(port, '127.0.0.1')
    this.#socket.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c])
      this.#wake?.()
    })
    this.#socket.on('close', () => {
      this.#closed = true
      this.#wake?.()
    })
    this.#socket.on('error', () => undefined)
  }

  write(text: string | Buffer): void {
    this.#socket.write(text)
  }

  close(): void {
    this.#socket.destroy()
  }

  async #need(n: number, deadline: number): Promise<void> {
    while (this.#buf.length < n) {
      if (this.#closed) throw new Error(`connection closed after ${this.#buf.length} of ${n} bytes`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.#buf.length})`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        this.#wake = () => {
          clearTimeout(t)
          r()
        }
      })
    }
  }

  async #line(deadline: number): Promise<string> {
    for (;;) {
      const i = this.#buf.indexOf('\r\n')
      if (i >= 0) {
        const line = this.#buf.subarray(0, i).toString('latin1')
        this.#buf = this.#buf.subarray(i + 2)
        return line
      }
      await this.#need(this.#buf.length + 1, deadline)
    }
  }

  async #take(n: number, deadline: number): Promise<Buffer> {
    await this.#need(n, deadline)
    const out = this.#buf.subarray(0, n)
    this.#buf = this.#buf.subarray(n)
    return out
  }

  /** The next answer on the connection; `head` for an answer to HEAD (no body). */
  async read(timeoutMs = 5000, head = false): Promise<Answer> {
    const deadline = Date.now() + timeoutMs
    const status = Number((await this.#line(deadline)).split(' ')[1])
    const headers: Record<string, string> = {}
    for (;;) {
      const l = await this.#line(deadline)
      if (!l) break
      const i = l.indexOf(':')
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
    }
    let body = Buffer.alloc(0)
    if (head || status === 204 || status === 304) {
      // no body
    } else if (headers['content-length'] !== undefined) {
      body = Buffer.from(await this.#take(Number(headers['content-length']), deadline))
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = []
      for (;;) {
        const size = parseInt(await this.#line(deadline), 16)
        if (size === 0) {
          while (await this.#line(deadline)); // trailers, then the empty line
          break
        }
        parts.push(Buffer.from(await this.#take(size, deadline)))
        await this.#take(2, deadline)
      }
      body = Buffer.concat(parts)
    }
    const text = body.toString('utf8')
    return { status, headers, body, text, json: () => JSON.parse(text) }
  }

  /** Bytes that arrived beyond the answers read so far. */
  get pending(): number {
    return this.#buf.length
  }
}
