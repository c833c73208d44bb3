// The upstream call of a fill (the `run` of src/cache/covering.ts Fills): one GET for a key, through
// another replica's fill when one runs (the Redis lock), its answer stored when isStorable() says so.
import { UpstreamLeakedToken } from '../errors.js'
import { clientResponseHeaders } from '../upstream/headers.js'
import { Fanout, readUpTo } from './fanout.js'
import type { Fetched, FetchJob, Fills } from './covering.js'
import type { Resources } from './resource.js'
import { isStorable, NOT_STORED } from './storable.js'
import { identityBody, makeEntry, type CacheStore, type Entry } from './store.js'
import type { HttpCacheOptions, SharedCache } from './types.js'

export interface FillContext {
  o: HttpCacheOptions
  store: CacheStore
  resources: Resources
  fills: Fills
}

/** One upstream GET for a key: through the other replicas' fill when one is running (Redis lock). */
export async function fetchFill(c: FillContext, job: FetchJob): Promise<Fetched> {
  const { k, fill } = job
  const shared = job.ttlMs !== undefined && c.o.shared?.up() ? c.o.shared : undefined
  const lockMs = c.o.lockMs ?? 60_000
  let locked = false
  if (shared) {
    if (fill) fill.sent = true // another replica's answer may come from before a write: treat as sent
    locked = await shared.lock(k.key, lockMs)
    if (!locked) {
      // another replica is making this call: wait for its entry
      const e = await shared.waitFor(k.key, lockMs)
      if (e && !fill?.invalidated) {
        c.store.set(e)
        c.resources.realStored(e, k)
        return { status: e.status, headers: { ...e.headers }, body: identityBody(e), entry: e }
      }
    } else if (job.cls === 'background') {
      // a refresh that got the lock just after another replica's fill released it (replicas
      // restarting together, a stale entry seen by both): that replica's fresh entry is the answer
      const e = await shared.get(k.key)
      if (e && c.o.now() - e.storedAt < e.ttlMs && !fill?.invalidated) {
        await shared.filled(k.key)
        c.store.set(e)
        c.resources.realStored(e, k)
        return { status: e.status, headers: { ...e.headers }, body: identityBody(e), entry: e }
      }
    }
  }
  let f: Fetched
  try {
    f = await callUpstream(c, job, shared)
  } finally {
    if (locked) await shared!.filled(k.key)
  }
  // a streamed answer flows once every waiter of the fill had its turn to open it (they all
  // resume in this tick's microtasks; nobody opened it: dropped)
  const stream = f.stream
  if (stream) setImmediate(() => stream.start())
  return f
}

async function callUpstream(c: FillContext, job: FetchJob, shared: SharedCache | undefined): Promise<Fetched> {
  const { req, cls, signal, ttlMs, fill, timing } = job
  const answer = await c.o.upstream.call({
    method: 'GET',
    path: req.rawPath,
    // asked when the call is sent: a queued fill may have been widened meanwhile
    query: fill
      ? () => {
          fill.sent = true
          return fill.rawQuery
        }
      : req.rawQuery,
    // an entry is shared by every client: ask for it the same way whoever asked first
    headers: { accept: 'application/json', 'accept-encoding': 'identity' },
    client: req.client,
    account: req.account,
    timing,
    cls,
    signal,
  })
  // read at most what an entry may hold: a larger answer is streamed through, never held whole
  let read: Awaited<ReturnType<typeof readUpTo>>
  try {
    read = await readUpTo(answer.body, c.o.maxEntryBytes)
  } catch (err) {
    throw c.o.upstream.mapError(err, 'GET')
  }
  if (answer.leak.found) {
    // the answer reflected the token: nobody sees it, nothing is stored (SPEC: 502 for cached paths)
    answer.body.destroy()
    throw new UpstreamLeakedToken()
  }
  const k = fill?.k ?? job.k
  const headers = clientResponseHeaders(answer.headers)
  for (const h of NOT_STORED) delete headers[h]
  if (!read.done) {
    // (the token in the part still to come is masked as it streams: upstream/leak.ts)
    return { status: answer.statusCode, headers, body: Buffer.alloc(0), stream: new Fanout(read.chunks, answer.body), entry: undefined }
  }
  const body = Buffer.concat(read.chunks, read.size)
  let entry: Entry | undefined
  const storable = isStorable({
    ttlMs,
    status: answer.statusCode,
    cacheControl: answer.headers['cache-control'],
    contentType: headers['content-type'],
    body,
    maxEntryBytes: c.o.maxEntryBytes,
    invalidated: fill?.invalidated,
    leaked: answer.leak.found,
  })
  if (storable) {
    entry = makeEntry({
      key: k.key,
      path: k.path,
      includes: k.includes,
      status: 200,
      headers,
      body,
      storedAt: c.o.now(),
      ttlMs: ttlMs!,
      staleMs: c.o.staleSeconds * 1000,
    })
    // stored at once (identity); the store swaps in the gzip version when the thread pool has it
    c.store.set(entry)
    c.resources.realStored(entry, k)
    c.fills.release(entry)
    if (shared) await shared.set(await c.store.compressed(entry))
  }
  return { status: answer.statusCode, headers, body, entry }
}
