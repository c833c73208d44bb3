import { afterEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers.js'
import { maxInAnyWindow } from './window.js'

const FIVE_PER_SECOND = { UPSTREAM_RATE_LIMIT: '5', UPSTREAM_RATE_WINDOW_MS: '1000' }
const SIM_FIVE_PER_SECOND = { rateLimit: 5, rateWindowMs: 1000 }

describe('the budget: at most N calls in any window, bursts at once, never a 429 to a client', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('a burst within the budget goes out at once', async () => {
    s = await startStack({ env: FIVE_PER_SECOND, sim: SIM_FIVE_PER_SECOND })
    const t0 = Date.now()
    const answers = await Promise.all([1, 2, 3, 4, 5].map((id) => fetch(`${s!.url}/api/v3/jobs/${id}`)))
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
    const times = s.sim.calls.map((c) => c.time)
    expect(Math.max(...times) - Math.min(...times)).toBeLessThan(300) // not spread over the window
    expect(Math.max(...times) - t0).toBeLessThan(500)
  })

  it('over-demand of distinct keys: only 200s, no 429 provoked upstream, never more than 5 in any second', async () => {
    s = await startStack({ env: FIVE_PER_SECOND, sim: SIM_FIVE_PER_SECOND })
    const answers = await Promise.all(Array.from({ length: 18 }, (_, i) => fetch(`${s!.url}/api/v3/jobs/${i + 1}`)))
    expect(answers.every((r) => r.status === 200)).toBe(true)
    expect(s.sim.throttled).toBe(0)
    expect(s.sim.calls).toHaveLength(18)
    expect(maxInAnyWindow(s.sim.calls, 1000)).toBeLessThanOrEqual(5)
  })

  it('UPSTREAM_MAX_CONCURRENT bounds the calls in flight', async () => {
    s = await startStack({ env: { UPSTREAM_MAX_CONCURRENT: '2', UPSTREAM_RATE_LIMIT: '100' }, sim: { rateLimit: 100 } })
    s.sim.inject({ kind: 'delay', path: /^\/jobs\/\d+$/, ms: 150, times: 6 })
    const answers = await Promise.all([1, 2, 3, 4, 5, 6].map((id) => fetch(`${s!.url}/api/v3/jobs/${id}`)))
    expect(answers.every((r) => r.status === 200)).toBe(true)
    expect(s.sim.peakInFlight).toBe(2)
  })
})
