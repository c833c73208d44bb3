import { afterEach, describe, expect, it } from 'vitest'
import { startStack, until, type Stack } from '../helpers.js'

describe('coalescing identical misses', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('20 concurrent identical misses make one upstream call; every waiter gets the answer', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'delay', path: '/jobs/21', ms: 200 })
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`${s!.url}/api/v3/jobs/21?includes${i % 2 ? '[]=address&includes[]=reps' : '=reps,address'}`).then(async (r) => ({
          status: r.status,
          cache: r.headers.get('x-cache'),
          body: await r.text(),
        })),
      ),
    )
    expect(s.sim.count('/jobs/21')).toBe(1)
    expect(results.every((r) => r.status === 200)).toBe(true)
    expect(new Set(results.map((r) => r.body)).size).toBe(1)
    expect(results.filter((r) => r.cache === 'MISS')).toHaveLength(20)
  })

  it('one waiter disconnecting does not cancel the call for the others', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'delay', path: '/jobs/22', ms: 300 })
    const leaver = new AbortController()
    const gone = fetch(`${s.url}/api/v3/jobs/22`, { signal: leaver.signal }).catch((e: Error) => e.name)
    const stayers = [fetch(`${s.url}/api/v3/jobs/22`), fetch(`${s.url}/api/v3/jobs/22`)]
    await until(() => s!.sim.count('/jobs/22') === 1)
    leaver.abort()
    expect(await gone).toBe('AbortError')
    const answers = await Promise.all(stayers)
    expect(answers.map((r) => r.status)).toEqual([200, 200])
    expect(s.sim.count('/jobs/22')).toBe(1)
    expect((await fetch(`${s.url}/api/v3/jobs/22`)).headers.get('x-cache')).toBe('HIT')
  })

  it('when the call fails, each waiter gets the error', async () => {
    s = await startStack()
    s.sim.inject({ kind: 'delay', path: '/jobs/23', ms: 150 })
    s.sim.inject({ kind: 'reset', path: '/jobs/23' })
    const answers = await Promise.all(Array.from({ length: 5 }, () => fetch(`${s!.url}/api/v3/jobs/23`)))
    expect(answers.map((r) => r.status)).toEqual([502, 502, 502, 502, 502])
    expect(s.sim.count('/jobs/23')).toBe(1)
    for (const r of answers) expect(await r.json()).toMatchObject({ error: { code: 'UPSTREAM_UNREACHABLE' } })
  })

  it('when every waiter leaves a call still queued for the budget, the call is dropped', async () => {
    s = await startStack({ env: { UPSTREAM_RATE_LIMIT: '1' } })
    await fetch(`${s.url}/api/v3/jobs/1`) // the only slot of the window
    const c1 = new AbortController()
    const c2 = new AbortController()
    const p = [c1, c2].map((c) => fetch(`${s!.url}/api/v3/jobs/24`, { signal: c.signal }).catch(() => 'gone'))
    await until(() => s!.app.upstream.throttle.depth === 1)
    c1.abort()
    await new Promise((r) => setTimeout(r, 50))
    expect(s.app.upstream.throttle.depth).toBe(1) // the other waiter still wants it
    c2.abort()
    await Promise.all(p)
    await until(() => s!.app.cache.inflight === 0)
    expect(s.sim.count('/jobs/24')).toBe(0)
  })
})
