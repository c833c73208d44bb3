// Restarts lose nothing: CACHE_DIR (cache-dir.ts) with the cache's disk tier (cache/persist.ts), the
// spent budget (upstream/budget-file.ts) and the warm start (cache/warm.ts), wired together here so
// that app.ts only opens, starts and closes it.
import type { FastifyBaseLogger } from 'fastify'
import { CacheDir } from './cache-dir.js'
import type { HttpCache } from './cache/http-cache.js'
import { DiskCache } from './cache/persist.js'
import { startWarm, type Warmer } from './cache/warm.js'
import type { Config, Secret } from './config.js'
import { BudgetFile } from './upstream/budget-file.js'
import type { Throttle, ThrottleOptions } from './upstream/throttle.js'

export interface Persistence {
  dir: CacheDir
  /** the Throttle option that keeps the local budget on disk; undefined in distributed mode */
  budget: ThrottleOptions['persist']
  disk: DiskCache | undefined
  /** loads the entries into the cache's store, then refreshes the ones that expired meanwhile */
  start(cache: HttpCache, throttle: Throttle): void
  close(): void
}

/** Undefined when CACHE_DIR is empty or cannot be used (then a warning says why). */
export function openPersistence(o: { config: Readonly<Config>; token: Secret; log: FastifyBaseLogger; now: () => number }): Persistence | undefined {
  const { config, log } = o
  if (!config.cacheDir) return undefined
  const dir = CacheDir.open(config.cacheDir, { apiUrl: config.apiUrl, token: o.token.reveal(), log })
  if (!dir) return undefined
  // distributed mode: the budget lives in Redis, shared by the replicas; a file would double it
  const budgetFile = config.redisUrl ? undefined : new BudgetFile(dir, { limit: config.rateLimit, windowMs: config.rateWindowMs, timeoutMs: config.upstreamTimeoutMs, log })
  const saved = budgetFile?.load()
  let disk: DiskCache | undefined
  let warm: Warmer | undefined
  const p: Persistence = {
    dir,
    budget: budgetFile && saved && { spent: saved.spent, wrap: (limiter, slots) => budgetFile.wrap(limiter, slots, saved) },
    get disk() {
      return disk
    },
    start(cache, throttle) {
      disk = new DiskCache({ dir, store: cache.store, maxBytes: config.cacheMaxBytes, now: o.now, log })
      const report = disk.load()
      log.info(
        { cacheDir: dir.path, entries: report.entries, bytes: report.bytes, stale: report.stale.length, ms: Math.round(report.ms), cpuMs: Math.round(report.cpuMs) },
        'cache loaded from CACHE_DIR',
      )
      dir.onLost = () => {
        warm?.stop()
        disk?.detach()
      }
      if (report.stale.length) warm = startWarm({ keys: report.stale, cache, throttle, limit: config.rateLimit, log })
    },
    close() {
      warm?.stop()
      disk?.close()
      dir.close()
    },
  }
  return p
}
