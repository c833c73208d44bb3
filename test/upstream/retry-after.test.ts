import { describe, expect, it } from 'vitest'
import { parseRetryAfter } from '../../src/upstream/client.js'

describe('Retry-After', () => {
  const now = Date.parse('2026-11-29T12:00:00Z')

  it('reads seconds as seconds (not milliseconds, unlike reply-from)', () => {
    expect(parseRetryAfter('2', now)).toBe(2000)
    expect(parseRetryAfter(' 30 ', now)).toBe(30_000)
  })

  it('reads an HTTP date as the time until then', () => {
    expect(parseRetryAfter('Sun, 29 Nov 2026 12:00:07 GMT', now)).toBe(7000)
    expect(parseRetryAfter('Sun, 29 Nov 2026 11:59:00 GMT', now)).toBe(0) // already past
  })

  it('gives undefined for nothing or nonsense, so that a whole window is waited instead', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined()
    expect(parseRetryAfter('', now)).toBeUndefined()
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(['3'], now)).toBe(3000)
  })
})
