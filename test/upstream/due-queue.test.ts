import { describe, expect, it } from 'vitest'
import { DueQueue } from '../../src/upstream/due-queue.js'
import { sleep, until } from '../helpers.js'

describe('DueQueue: items due at a time, one timer', () => {
  it('hands items over when their time comes, earliest first, whatever the order they were added in', async () => {
    const got: Array<[string, number]> = []
    const t0 = Date.now()
    const q = new DueQueue<string>((items) => {
      for (const i of items) got.push([i, Date.now() - t0])
    })
    q.add(t0 + 90, 'c')
    q.add(t0 + 30, 'a')
    q.add(t0 + 60, 'b')
    q.add(t0 + 30, 'a2')
    expect(q.size).toBe(4)
    await until(() => got.length === 4, 2000)
    expect(got.map(([i]) => i).slice(2)).toEqual(['b', 'c'])
    expect(
      got
        .map(([i]) => i)
        .slice(0, 2)
        .sort(),
    ).toEqual(['a', 'a2'])
    // never early
    for (const [i, at] of got) expect(at, i).toBeGreaterThanOrEqual(i.startsWith('a') ? 30 : i === 'b' ? 60 : 90)
    expect(q.size).toBe(0)
  })

  it('a time already past is due at once; close() drops what is left', async () => {
    const got: string[] = []
    const q = new DueQueue<string>((items) => got.push(...items))
    q.add(Date.now() - 5, 'past')
    q.add(Date.now() + 50, 'later')
    await until(() => got.length === 1, 1000)
    expect(got).toEqual(['past'])
    q.close()
    await sleep(100)
    q.add(Date.now(), 'after close')
    await sleep(20)
    expect(got).toEqual(['past'])
  })

  it('10,000 items added in scrambled order come out in time order, batch after batch', async () => {
    const batches: number[][] = []
    const q = new DueQueue<number>((items) => batches.push(items))
    const now = Date.now()
    const ats = Array.from({ length: 10_000 }, (_, i) => now + 20 + ((i * 7919) % 100))
    for (const at of ats) q.add(at, at)
    await until(() => batches.flat().length === ats.length, 3000)
    // every item of a batch was due at its firing, so each batch's latest is before the next batch's earliest
    for (let i = 1; i < batches.length; i++) expect(Math.max(...batches[i - 1]!)).toBeLessThan(Math.min(...batches[i]!))
    expect(batches.flat().sort((a, b) => a - b)).toEqual([...ats].sort((a, b) => a - b))
  })

  it("a time further off than Node's longest timer (~24.8 days) waits quietly, no 1 ms spin", async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    const got: string[] = []
    const q = new DueQueue<string>((items) => got.push(...items))
    try {
      q.add(Date.now() + 40 * 24 * 3_600_000, 'in 40 days')
      q.add(Date.now() + 30, 'soon')
      await sleep(120)
      expect(got).toEqual(['soon'])
      expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([])
    } finally {
      q.close()
      process.off('warning', onWarning)
    }
  })
})
