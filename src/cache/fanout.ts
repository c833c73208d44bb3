// An upstream answer too large to be a cache entry, streamed to every waiter of its fill without
// ever being held whole: the part already read (at most an entry's size) is replayed to each, the
// rest flows to all of them at the pace of the slowest (backpressure), and stops when all left.
import { PassThrough, type Readable } from 'node:stream'

/** Reads until `limit` bytes are exceeded (done: false, the body paused) or the body ends (done: true). */
export function readUpTo(body: Readable, limit: number): Promise<{ chunks: Buffer[]; size: number; done: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = () => {
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
      body.off('close', onClose)
    }
    const onData = (c: Buffer) => {
      chunks.push(c)
      size += c.length
      if (size > limit) {
        body.pause()
        cleanup()
        resolve({ chunks, size, done: false })
      }
    }
    const onEnd = () => {
      cleanup()
      resolve({ chunks, size, done: true })
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const onClose = () => {
      cleanup()
      reject(Object.assign(new Error('the upstream answer ended early'), { code: 'ECONNRESET' }))
    }
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', onError)
    body.once('close', onClose)
  })
}

export class Fanout {
  #prefix: Buffer[]
  readonly #source: Readable
  readonly #branches = new Set<PassThrough>()
  /** branches whose buffer is full: the source waits for them */
  readonly #full = new Set<PassThrough>()
  #started = false

  constructor(prefix: Buffer[], source: Readable) {
    this.#prefix = prefix
    this.#source = source
    source.pause()
  }

  /** A reader of the whole body; undefined once the rest has started to flow (too late to join). */
  open(): Readable | undefined {
    if (this.#started) return undefined
    const b = new PassThrough()
    for (const c of this.#prefix) b.write(c)
    this.#branches.add(b)
    b.once('close', () => {
      this.#branches.delete(b)
      this.#unblock(b)
      if (this.#started && this.#branches.size === 0) this.#source.destroy()
    })
    return b
  }

  /** Lets the rest flow to the readers opened so far (call once every waiter had its chance). */
  start(): void {
    if (this.#started) return
    this.#started = true
    this.#prefix = []
    const src = this.#source
    if (this.#branches.size === 0) {
      src.destroy()
      return
    }
    src.on('data', (chunk: Buffer) => {
      for (const b of this.#branches) {
        if (!b.write(chunk) && !this.#full.has(b)) {
          this.#full.add(b)
          b.once('drain', () => this.#unblock(b))
        }
      }
      if (this.#full.size > 0) src.pause()
    })
    src.once('end', () => {
      for (const b of this.#branches) b.end()
    })
    src.once('error', (err) => {
      for (const b of this.#branches) b.destroy(err)
    })
    src.once('close', () => {
      if (!src.readableEnded) for (const b of this.#branches) b.destroy(new Error('the upstream answer ended early'))
    })
    src.resume()
  }

  #unblock(b: PassThrough): void {
    if (!this.#full.delete(b)) return
    if (this.#full.size === 0 && this.#started && !this.#source.destroyed) this.#source.resume()
  }
}
