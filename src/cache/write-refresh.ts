// Writes: JobProgress answers an update with the resource (`{"message":...,"data":{...}}`) and a
// create with it under its name (`{"job":{...}}`, `{"customer":{...}}`). That object is what a plain
// GET of the resource answers right after, so the proxy stores it as the plain entry of the written
// path (or of /jobs/{newid}) instead of leaving a miss. Only when the object's id is the path's and
// its keys are exactly, in order, those of the real plain answers already seen on that route; the
// body around it is the one those real answers have. Anything else: eviction only, as before.
import { Readable } from 'node:stream'
import { baseOf, objectMembers, routeOf, type Member } from './projection.js'
import type { CacheKey } from './key.js'

interface PlainShape {
  keys: string[]
  /** a real plain answer's bytes before and after its data object: `{"data":` and `,"status":200}` */
  prefix: string
  suffix: string
  headers: Readonly<Record<string, string | string[]>>
  /** two real answers of this route disagreed on these: never refresh it */
  mixed: boolean
}

const MAX_ROUTES = 1000

/** Top-level members of a JSON object given as a latin1 string. */
function topMembers(s: string): Member[] | undefined {
  return objectMembers(s)
}

export class WriteRefresh {
  readonly #shapes = new Map<string, PlainShape>()
  /** paths whose plain entry came from a write's answer, not yet compared with a real answer */
  readonly #pending = new Map<string, Buffer>()

  /** A real plain answer (no includes) of `path` was stored: learn its route's shape. */
  learn(k: CacheKey, body: Buffer, headers: Readonly<Record<string, string | string[]>>): void {
    if (k.includes.length !== 0 || baseOf(k).other !== '') return
    const route = routeOf(k.path)
    if (!route.endsWith('{id}')) return
    const s = body.toString('latin1')
    const m = topMembers(s)
    const data = m?.find((x) => x.key === 'data')
    if (!m || !data || m.map((x) => x.key).join() !== 'data,status' || s[data.vStart] !== '{') return
    const keys = topMembers(s.slice(data.vStart, data.end))?.map((x) => x.key)
    if (!keys) return
    const shape = { keys, prefix: s.slice(0, data.vStart), suffix: s.slice(data.end), headers, mixed: false }
    const known = this.#shapes.get(route)
    if (!known) {
      if (this.#shapes.size < MAX_ROUTES) this.#shapes.set(route, shape)
      return
    }
    if (known.keys.join() !== keys.join() || known.prefix !== shape.prefix || known.suffix !== shape.suffix) known.mixed = true
  }

  /**
   * The plain answer a 2xx write's answer holds: for PUT/PATCH `path` its `data`, for POST to a
   * collection its `job` / `customer` (the collection's name without the s) at path/<id>.
   */
  fromWrite(method: string, path: string, body: Buffer): { path: string; body: Buffer; headers: Readonly<Record<string, string | string[]>> } | undefined {
    let target = path
    let member = 'data'
    if (method === 'POST') {
      const last = path.split('/').pop() ?? ''
      if (!/^[a-z_]+s$/.test(last)) return undefined
      member = last.slice(0, -1)
    } else if (method !== 'PUT' && method !== 'PATCH') {
      return undefined
    }
    const s = body.toString('latin1')
    const m = topMembers(s)
    const obj = m?.find((x) => x.key === member)
    if (!obj || s[obj.vStart] !== '{') return undefined
    const raw = s.slice(obj.vStart, obj.end)
    let id: unknown
    try {
      id = (JSON.parse(Buffer.from(raw, 'latin1').toString('utf8')) as { id?: unknown }).id
    } catch {
      return undefined
    }
    if (typeof id !== 'number' || !Number.isInteger(id)) return undefined
    if (method === 'POST') target = `${path}/${id}`
    else if (path.split('/').pop() !== String(id)) return undefined
    const shape = this.#shapes.get(routeOf(target))
    if (!shape || shape.mixed) return undefined
    if (
      topMembers(raw)
        ?.map((x) => x.key)
        .join() !== shape.keys.join()
    )
      return undefined
    return { path: target, body: Buffer.from(shape.prefix + raw + shape.suffix, 'latin1'), headers: shape.headers }
  }

  /** A plain entry of `path` now holds a write's answer: compare it with the next real one. */
  refreshed(path: string, body: Buffer): void {
    if (this.#pending.size >= 10_000) this.#pending.clear()
    this.#pending.set(path, body)
  }

  /** A write touched `path` again: the earlier refresh is no longer comparable. */
  written(path: string): void {
    this.#pending.delete(path)
  }

  /** The body a write stored for `path`, to compare with a real answer fetched now; taken once. */
  take(path: string): Buffer | undefined {
    const b = this.#pending.get(path)
    this.#pending.delete(path)
    return b
  }
}

/** Write answers larger than this are passed on as a stream, and only evict. */
export const WRITE_ANSWER_LIMIT = 1024 * 1024

/**
 * After a 2xx write: reads a JSON answer (up to WRITE_ANSWER_LIMIT) so that the cache can refresh
 * from it, runs the eviction, and gives back what to send the client (the bytes, or the stream).
 * Never rejects; the eviction is done before the client gets its answer.
 */
export async function settleWrite(
  cache: { afterWrite(method: string, rawPath: string, body: Buffer | undefined): Promise<number> },
  o: { method: string; rawPath: string; contentType: string | number | string[] | undefined; stream: Readable; log: { warn(obj: object, msg: string): void } },
): Promise<{ evicted: number; out: Readable | Buffer }> {
  let body: Buffer | undefined
  let out: Readable | Buffer = o.stream
  if (/\bjson\b/i.test([o.contentType ?? ''].flat().join(','))) {
    const chunks: Buffer[] = []
    let size = 0
    const it = o.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
    try {
      for (;;) {
        const r = await it.next()
        if (r.done) {
          body = out = Buffer.concat(chunks)
          break
        }
        chunks.push(r.value)
        size += r.value.length
        if (size > WRITE_ANSWER_LIMIT) {
          out = Readable.from(
            (async function* () {
              yield* chunks
              for (let n = await it.next(); !n.done; n = await it.next()) yield n.value
            })(),
          )
          break
        }
      }
    } catch (err) {
      // the answer broke mid-way: the client's answer breaks the same way (after what had come)
      out = Readable.from(
        (async function* () {
          yield* chunks
          throw err
        })(),
      )
    }
  }
  let evicted = 0
  try {
    evicted = await cache.afterWrite(o.method, o.rawPath, body)
  } catch (err) {
    o.log.warn({ err }, 'eviction after write failed')
  }
  return { evicted, out }
}
