import type { CallRecord } from '../../simulator/app.js'

/** The largest number of calls the simulator received in any interval of `windowMs`. */
export function maxInAnyWindow(calls: CallRecord[], windowMs: number): number {
  const t = calls.map((c) => c.time).sort((a, b) => a - b)
  let max = 0
  let j = 0
  for (let i = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= windowMs) j++
    max = Math.max(max, i - j + 1)
  }
  return max
}

/** Waits until the simulator's fixed window (aligned on the epoch) has just begun, so that it does not roll over mid-test. */
export async function earlyInWindow(windowMs: number): Promise<void> {
  while (Date.now() % windowMs > windowMs / 10) await new Promise((r) => setTimeout(r, 5))
}
