// Bottleneck waits on the timer queue where it only means to yield, and setTimeout(0) is at least
// 1 ms in Node. Two places, both patched to setImmediate when there is nothing to wait for:
// - its in-process datastore yields with setTimeout(0) before each of its operations, to behave
//   like its Redis datastore; a job takes several of them: measured +4 ms on every upstream call and
//   ~4 ms between the calls of a burst (bench/results/2026-11-29.md).
// - Bottleneck#_run starts every job with setTimeout(job, wait), wait 0 unless minTime is set:
//   +1 ms on every upstream call (bench/results, issue 14's miss path).
// The order of operations is the same: setImmediate callbacks run in the order they were queued.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const LocalDatastore = require('bottleneck/lib/LocalDatastore.js') as {
  prototype: { yieldLoop(t?: number): Promise<void>; Promise: PromiseConstructor }
}

interface Job {
  options: { expiration?: number | null }
  doRun(): void
  doExecute(limiter: unknown, clearGlobalState: () => unknown, run: (wait: number) => unknown, free: () => unknown): Promise<unknown>
  doExpire(clearGlobalState: () => unknown, run: (wait: number) => unknown, free: () => unknown): unknown
}
interface BottleneckInternals {
  _limiter: unknown
  _scheduled: Record<number, { timeout: unknown; expiration: NodeJS.Timeout | undefined; job: Job }>
  _clearGlobalState(index: number): unknown
  _free(index: number, job: Job, ...rest: unknown[]): unknown
  _run: (this: BottleneckInternals, index: number, job: Job, wait: number) => unknown
}
const Bottleneck = require('bottleneck/lib/Bottleneck.js') as { prototype: BottleneckInternals }

let patched = false

export function fastLocalYield(): void {
  if (patched) return
  patched = true
  LocalDatastore.prototype.yieldLoop = function (t = 0) {
    return new this.Promise<void>((resolve) => (t > 0 ? setTimeout(resolve, t) : setImmediate(resolve)))
  }
  const run = Bottleneck.prototype._run
  // the same as Bottleneck 2.19.5's _run (lib/Bottleneck.js), with setImmediate for a wait of 0.
  // stop({ dropWaitingJobs: true }) drops a scheduled job with clearTimeout(timeout), which does not
  // cancel an immediate: the job's doExecute then finds it dropped and rejects (its status is checked
  // first, before the task runs; every later failure is handled inside doExecute). That rejection is
  // the only one it can have, and the job's caller already has its drop error: nothing more to do.
  Bottleneck.prototype._run = function (this: BottleneckInternals, index: number, job: Job, wait: number) {
    if (wait > 0) return run.call(this, index, job, wait)
    job.doRun()
    const clearGlobalState = this._clearGlobalState.bind(this, index)
    const again = this._run.bind(this, index, job)
    const free = this._free.bind(this, index, job)
    return (this._scheduled[index] = {
      timeout: setImmediate(() => {
        job.doExecute(this._limiter, clearGlobalState, again, free).catch(() => undefined)
      }),
      expiration: job.options.expiration != null ? setTimeout(() => job.doExpire(clearGlobalState, again, free), job.options.expiration) : undefined,
      job,
    })
  }
}
