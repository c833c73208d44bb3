import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config.js'
import { startStack, type Stack } from '../helpers.js'
import { maxInAnyWindow } from '../upstream/window.js'

const TSX = join(process.cwd(), 'node_modules/.bin/tsx')
const KEYS = 'office:k-office-1,batch:k-batch-2,billing:k-billing-3'

describe('CLIENT_BUDGET_SHARES: validated at start-up with one-line errors', () => {
  const load = (env: Record<string, string>) => () => loadConfig({ JOBPROGRESS_TOKEN: 't', ...env })

  it('accepts name=percent for client key names (and "anonymous" without keys)', () => {
    expect([...loadConfig({ JOBPROGRESS_TOKEN: 't', PROXY_API_KEYS: KEYS, CLIENT_BUDGET_SHARES: 'batch=20, billing=30%' }).config.clientBudgetShares]).toEqual([
      ['batch', 20],
      ['billing', 30],
    ])
    expect(loadConfig({ JOBPROGRESS_TOKEN: 't', CLIENT_BUDGET_SHARES: 'anonymous=50' }).config.clientBudgetShares.get('anonymous')).toBe(50)
    expect(loadConfig({ JOBPROGRESS_TOKEN: 't' }).config.clientBudgetShares.size).toBe(0)
  })

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ['an unknown name', { PROXY_API_KEYS: KEYS, CLIENT_BUDGET_SHARES: 'nightly=20' }, /^CLIENT_BUDGET_SHARES: "nightly" is not a client of PROXY_API_KEYS \(its names: office, batch, billing\)$/],
    ['a name without keys', { CLIENT_BUDGET_SHARES: 'batch=20' }, /^CLIENT_BUDGET_SHARES: "batch" is not a client: without PROXY_API_KEYS the only client is "anonymous"$/],
    ['shares over 100%', { PROXY_API_KEYS: KEYS, CLIENT_BUDGET_SHARES: 'batch=60,billing=50' }, /^CLIENT_BUDGET_SHARES: the shares add up to 110%, more than 100%$/],
    ['a percent out of range', { PROXY_API_KEYS: KEYS, CLIENT_BUDGET_SHARES: 'batch=0' }, /^CLIENT_BUDGET_SHARES: "batch": expected a percent above 0 and at most 100/],
    ['a malformed entry', { PROXY_API_KEYS: KEYS, CLIENT_BUDGET_SHARES: 'batch:20' }, /^CLIENT_BUDGET_SHARES: entry 1 \("batch:20"\): expected name=percent/],
    ['a name given twice', { PROXY_API_KEYS: KEYS, CLIENT_BUDGET_SHARES: 'batch=10,batch=10' }, /^CLIENT_BUDGET_SHARES: "batch" is given twice$/],
  ]
  for (const [what, env, message] of bad) {
    it(`refuses ${what}`, () => {
      expect(load(env)).toThrow(ConfigError)
      expect(load(env)).toThrow(message)
    })
  }

  it('the server exits 1 with that one line, and never echoes a key', () => {
    const r = spawnSync(TSX, ['src/server.ts'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', LOG_LEVEL: 'silent', JOBPROGRESS_TOKEN: 't', PROXY_API_KEYS: KEYS, CLIENT_BUDGET_SHARES: 'batch=80,office=30' },
      encoding: 'utf8',
      timeout: 15_000,
    })
    expect(r.status).toBe(1)
    expect(r.stderr.trim().split('\n')).toEqual(['jobprogress-proxy: configuration error: CLIENT_BUDGET_SHARES: the shares add up to 110%, more than 100%'])
    expect(r.stderr).not.toContain('k-batch-2')
  })
})

describe('CLIENT_BUDGET_SHARES: a client is capped at its share of each window; the others keep the rest', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('batch=20 of 10 per second: batch sends at most 2 calls a second, office gets the other 8 at once', async () => {
    s = await startStack({
      env: { PROXY_API_KEYS: KEYS, CLIENT_BUDGET_SHARES: 'batch=20', UPSTREAM_RATE_LIMIT: '10', UPSTREAM_RATE_WINDOW_MS: '1000', UPSTREAM_MAX_CONCURRENT: '10' },
      sim: { rateLimit: 10, rateWindowMs: 1000 },
    })
    const get = (key: string, path: string) => fetch(`${s!.url}/api/v3${path}`, { headers: { 'x-proxy-key': key } })
    const t0 = Date.now()
    // the nightly sync floods first
    const batch = [1, 2, 3, 4, 5, 6].map((id) => get('k-batch-2', `/jobs/${id}`))
    await new Promise((r) => setTimeout(r, 50))
    const office = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((id) => get('k-office-1', `/customers/${id}`)))
    expect(office.map((r) => r.status)).toEqual(Array(8).fill(200))
    expect(Date.now() - t0).toBeLessThan(700) // not behind batch's queue

    // while batch still waits: the status shows its share and its use of the window
    const st = (await (await fetch(`${s.url}/_proxy/status`)).json()) as { clients: Record<string, { share_percent: number | null; window_cap: number | null; window_calls: number }> }
    expect(st.clients.batch).toMatchObject({ share_percent: 20, window_cap: 2, window_calls: 2 })
    expect(st.clients.office).toMatchObject({ share_percent: null, window_cap: null, window_calls: 8 })

    expect((await Promise.all(batch)).map((r) => r.status)).toEqual(Array(6).fill(200))
    const batchCalls = s.sim.calls.filter((c) => c.url.startsWith('/api/v3/jobs/'))
    const officeCalls = s.sim.calls.filter((c) => c.url.startsWith('/api/v3/customers/'))
    expect(batchCalls).toHaveLength(6)
    expect(maxInAnyWindow(batchCalls, 1000)).toBe(2)
    expect(Math.max(...officeCalls.map((c) => c.time)) - t0).toBeLessThan(700)
    expect(s.sim.throttled).toBe(0)
  })
})
