import Bottleneck from 'bottleneck'
import { describe, expect, it } from 'vitest'
import { fastLocalYield } from '../../src/upstream/bottleneck-local.js'
import { sleep } from '../helpers.js'

describe("Bottleneck's jobs start on setImmediate (bottleneck-local.ts)", () => {
  it('a job dropped by stop({ dropWaitingJobs }) after it was scheduled never runs, and nothing rejects unhandled', async () => {
    fastLocalYield()
    const unhandled: unknown[] = []
    const onUnhandled = (r: unknown) => unhandled.push(r)
    process.on('unhandledRejection', onUnhandled)
    try {
      const limiter = new Bottleneck({ maxConcurrent: 1 })
      let stopped: Promise<void> | undefined
      // scheduled: the job is about to start on the next immediate; stop drops it (as at shutdown)
      limiter.once('scheduled', () => (stopped = limiter.stop({ dropWaitingJobs: true })))
      let ran = false
      const job = limiter.schedule(async () => {
        ran = true
      })
      await expect(job).rejects.toThrow(/stopped/i)
      await stopped
      await sleep(50)
      expect(ran).toBe(false)
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('jobs still run in the order they were scheduled', async () => {
    fastLocalYield()
    const limiter = new Bottleneck({ maxConcurrent: 4 })
    const order: number[] = []
    await Promise.all([1, 2, 3, 4, 5, 6].map((i) => limiter.schedule(async () => void order.push(i))))
    expect(order).toEqual([1, 2, 3, 4, 5, 6])
    await limiter.stop()
  })
})
