// Distributed mode (REDIS_URL): several replicas behave as one proxy.
// - one budget: a clustered Bottleneck (ioredis) whose spent slots wait in Redis (RedisSlots), so a
//   replica that dies mid-window does not take its slots with it;
// - one cache: Redis is the second tier behind each replica's lru-cache (entries with their headers,
//   ETag and stored-at time, bounded by TTL and a key prefix); an index of the cached paths, bounded
//   (see SET_ENTRY), lets an invalidation find the entries it reaches;
// - one view of writes: evictions and purges reach every replica's first tier by pub/sub, and the
//   Redis tier once, from the replica that saw the write;
// - one call per miss: a short Redis lock per key; the others wait for the "filled" message.
import { randomUUID } from 'node:crypto'
import Bottleneck from 'bottleneck'
import type { FastifyBaseLogger } from 'fastify'
import { Redis } from 'ioredis'
import type { Invalidation, SharedCache } from '../cache/http-cache.js'
import type { Encoding } from '../cache/encoding.js'
import type { Entry, EvictFilter } from '../cache/store.js'
import { redisRecoveryFix } from '../upstream/bottleneck-redis.js'
import { RedisSlots } from '../upstream/slots.js'
import type { Budget } from '../upstream/throttle.js'

export interface DistributedOptions {
  url: string
  /** key prefix */
  prefix: string
  /**
   * The budget's settings: part of the shared budget's keys, so that replicas started with another
   * UPSTREAM_RATE_LIMIT, window or concurrency never reuse settings Redis kept from earlier ones.
   */
  budgetId: string
  limit: number
  windowMs: number
  maxConcurrent: number
  log: FastifyBaseLogger
  /** most paths the Redis tier indexes (default MAX_PATHS); past it the soonest-expiring path's entries go */
  maxPaths?: number
}

/** Default bound of the Redis tier's path index: an invalidation reads the whole index once. */
export const MAX_PATHS = 20_000

// Stores one entry and keeps the path index bounded, atomically.
// - `c:<key>` the entry, expiring after TTL + stale window;
// - `p:<path>` the keys cached under a path, expiring with the last of them;
// - `path-index` a sorted set of paths scored by when their last entry expires: paths whose entries have all
//   expired are dropped here, and past ARGV[6] paths the soonest-expiring ones are dropped with their
//   entries (a Redis-tier eviction: an entry never outlives its index, or a write could miss it).
// KEYS: c:<key>, p:<path>, path-index. ARGV: entry JSON, ttl ms, path, key, key prefix, max paths.
const SET_ENTRY = `
local ttl = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('SADD', KEYS[2], ARGV[4])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
local until_ = now + ttl
local score = redis.call('ZSCORE', KEYS[3], ARGV[3])
if not score or tonumber(score) < until_ then redis.call('ZADD', KEYS[3], until_, ARGV[3]) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[6])
if over > 0 then
  for _, path in ipairs(redis.call('ZRANGE', KEYS[3], 0, over - 1)) do
    local index = ARGV[5] .. 'p:' .. path
    for _, key in ipairs(redis.call('SMEMBERS', index)) do redis.call('DEL', ARGV[5] .. 'c:' .. key) end
    redis.call('DEL', index)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, over - 1)
end
return over
`

interface StoredEntry {
  key: string
  path: string
  includes: string[]
  status: number
  headers: Record<string, string | string[]>
  body: string
  encoding?: Encoding
  etag: string
  storedAt: number
  ttlMs: number
  staleMs: number
  size: number
}

const CLIENT_OPTIONS = {
  // fail fast while Redis is away: the proxy has a local fallback for everything
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  commandTimeout: 2000,
  retryStrategy: (times: number) => Math.min(100 * times, 1000),
}

/** An invalidation travels between replicas as what happened, not as the filters it implies. */
export class Distributed implements SharedCache {
  readonly id = randomUUID()
  readonly redis: Redis
  readonly sub: Redis
  readonly budget: Budget
  readonly #o: DistributedOptions
  readonly #connection: Bottleneck.IORedisConnection
  readonly #waiters = new Map<string, Set<() => void>>()
  #onInvalidation: (inv: Invalidation) => void = () => undefined
  #wasUp = false

  constructor(o: DistributedOptions) {
    redisRecoveryFix()
    this.#o = o
    this.redis = new Redis(o.url, CLIENT_OPTIONS)
    this.sub = new Redis(o.url, { ...CLIENT_OPTIONS, enableOfflineQueue: true })
    for (const c of [this.redis, this.sub]) c.on('error', () => undefined) // state is read from .status; see up()
    this.redis.on('ready', () => this.#transition(true))
    this.redis.on('close', () => this.#transition(false))
    this.sub.on('message', (channel: string, message: string) => this.#message(channel, message))
    void this.sub.subscribe(this.#channel('evict'), this.#channel('filled')).catch(() => undefined)

    const bottleneckClient = new Redis(o.url, CLIENT_OPTIONS)
    bottleneckClient.on('error', () => undefined)
    this.#connection = new Bottleneck.IORedisConnection({ client: bottleneckClient })
    this.#connection.on('error', () => undefined)
    const budgetPrefix = `${o.prefix}-budget-${o.budgetId}`
    const limiter = new Bottleneck({
      id: budgetPrefix,
      datastore: 'ioredis',
      connection: this.#connection,
      clearDatastore: false,
      reservoir: o.limit,
      maxConcurrent: o.maxConcurrent,
      // the shared keys expire after 20 idle windows; every slot has long come back by then
      timeout: o.windowMs * 20,
    })
    limiter.on('error', (err) => o.log.debug({ err }, 'shared limiter error'))
    const slots = new RedisSlots(limiter, this.redis, budgetPrefix, o.windowMs * 20, (err) => o.log.debug({ err }, 'shared budget error'))
    this.budget = { name: 'shared', limiter, slots }
  }

  /** Connected and usable: the shared budget and tier are in use. */
  up(): boolean {
    return this.redis.status === 'ready'
  }

  /** Called for invalidations published by other replicas. */
  onInvalidation(fn: (inv: Invalidation) => void): void {
    this.#onInvalidation = fn
  }

  // ---- the second cache tier

  async get(key: string): Promise<Entry | undefined> {
    if (!this.up()) return undefined
    try {
      const raw = await this.redis.get(this.#k('c', key))
      if (!raw) return undefined
      const e = JSON.parse(raw) as StoredEntry
      // entries are stored compressed (gzip) like the first tier's; older ones carry no encoding
      return { ...e, encoding: e.encoding ?? 'identity', body: Buffer.from(e.body, 'base64') }
    } catch {
      return undefined
    }
  }

  async set(e: Entry): Promise<void> {
    if (!this.up()) return
    const ttl = e.ttlMs + e.staleMs
    const stored: StoredEntry = { ...e, includes: [...e.includes], headers: { ...e.headers }, body: e.body.toString('base64') }
    await this.redis
      .eval(
        SET_ENTRY,
        3,
        this.#k('c', e.key),
        this.#k('p', e.path),
        this.#k('path-index'),
        JSON.stringify(stored),
        String(ttl),
        e.path,
        e.key,
        `${this.#o.prefix}:`,
        String(this.#o.maxPaths ?? MAX_PATHS),
      )
      .catch(() => undefined)
  }

  /** Deletes the Redis tier's entries the filters reach, then tells the other replicas. */
  async invalidate(inv: Invalidation, filters: EvictFilter[]): Promise<void> {
    if (!this.up()) return
    try {
      // three round trips whatever the number of paths: the (bounded) index, the keys of every path a
      // filter reaches in one pipeline, then the deletions with the message
      const paths = await this.redis.zrange(this.#k('path-index'), 0, -1)
      const reached = paths.map((path) => ({ path, filters: filters.filter((f) => f.match(path)) })).filter((r) => r.filters.length > 0)
      const members = reached.length ? ((await this.redis.pipeline(reached.map((r) => ['smembers', this.#k('p', r.path)])).exec()) ?? []) : []
      const del: string[] = []
      const pipeline = this.redis.pipeline()
      reached.forEach(({ path, filters: reaching }, i) => {
        const [err, keys] = members[i] ?? [null, []]
        if (err) throw err
        for (const key of keys as string[]) {
          const includes = new URLSearchParams(key.split('?')[1] ?? '').getAll('includes[]')
          if (reaching.some((f) => f.includes === undefined || includes.includes(f.includes))) {
            del.push(this.#k('c', key))
            pipeline.srem(this.#k('p', path), key)
          }
        }
      })
      if (del.length) pipeline.del(...del)
      pipeline.publish(this.#channel('evict'), JSON.stringify({ from: this.id, ...inv }))
      await pipeline.exec()
    } catch (err) {
      this.#o.log.warn({ err }, 'shared cache invalidation failed; entries expire by their TTL')
    }
  }

  // ---- one call per miss across replicas

  /** true when this replica should make the call; false when another one is making it. */
  async lock(key: string, ms: number): Promise<boolean> {
    if (!this.up()) return true
    try {
      return (await this.redis.set(this.#k('lock', key), this.id, 'PX', ms, 'NX')) === 'OK'
    } catch {
      return true
    }
  }

  /** Releases the lock and tells waiting replicas the entry is there (or that they must call). */
  async filled(key: string): Promise<void> {
    if (!this.up()) return
    await this.redis
      .multi()
      .del(this.#k('lock', key))
      .publish(this.#channel('filled'), key)
      .exec()
      .catch(() => undefined)
  }

  /** Waits for another replica's fill of `key`, at most `ms`; the entry, or undefined. */
  async waitFor(key: string, ms: number): Promise<Entry | undefined> {
    let wake!: () => void
    const woken = new Promise<void>((r) => (wake = r))
    let set = this.#waiters.get(key)
    if (!set) this.#waiters.set(key, (set = new Set()))
    set.add(wake)
    const timer = setTimeout(wake, ms)
    try {
      // it may have been filled between the lock attempt and the subscription
      const already = await this.get(key)
      if (already) return already
      await woken
      return await this.get(key)
    } finally {
      clearTimeout(timer)
      set.delete(wake)
      if (set.size === 0) this.#waiters.delete(key)
    }
  }

  async close(): Promise<void> {
    this.budget.slots.close()
    await this.#connection.disconnect(false).catch(() => undefined)
    for (const c of [this.redis, this.sub]) c.disconnect()
  }

  #transition(up: boolean): void {
    if (up === this.#wasUp) return
    this.#wasUp = up
    if (up) this.#o.log.info('Redis connected: shared budget and cache in use')
    else this.#o.log.warn('Redis unavailable: serving from the first cache tier with a local share of the budget')
  }

  #message(channel: string, message: string): void {
    if (channel === this.#channel('filled')) {
      for (const wake of this.#waiters.get(message) ?? []) wake()
      return
    }
    if (channel === this.#channel('evict')) {
      try {
        const m = JSON.parse(message) as Invalidation & { from: string }
        if (m.from !== this.id) this.#onInvalidation(m)
      } catch {
        // not ours
      }
    }
  }

  #k(kind: string, rest?: string): string {
    return rest === undefined ? `${this.#o.prefix}:${kind}` : `${this.#o.prefix}:${kind}:${rest}`
  }

  #channel(name: string): string {
    return `${this.#o.prefix}:${name}`
  }
}
