import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers.js'

// Debian's chromium, as in test/routes/dashboard.test.ts (importing that file would run its tests here too)
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

describe.skipIf(!existsSync(CHROMIUM))('the dashboard shows who spends the budget (headless Chromium)', () => {
  let s: Stack
  let browser: Browser
  beforeAll(async () => {
    s = await startStack({
      app: { historyIntervalMs: 300 },
      env: { PROXY_API_KEYS: 'office:k-office,batch:k-batch,billing:k-billing', CLIENT_BUDGET_SHARES: 'batch=20', UPSTREAM_RATE_LIMIT: '100' },
      sim: { rateLimit: 100 },
    })
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  })
  afterAll(async () => {
    await browser?.close()
    await s?.close()
  })

  it('top clients with their share and use of the window, and top routes, over the last 15 minutes', async () => {
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text())
    })
    page.on('pageerror', (e) => problems.push(String(e)))
    await page.goto(`${s.url}/_proxy/`)
    // before any traffic: every configured client, none spent
    await page.waitForFunction(() => document.querySelectorAll('#top_clients tr[data-client]').length === 3)
    expect(await page.textContent('#top_routes')).toBe('none')

    const get = (key: string, path: string, init: RequestInit = {}) => fetch(`${s.url}/api/v3${path}`, { ...init, headers: { 'x-proxy-key': key, ...(init.headers as Record<string, string>) } })
    for (const id of [1, 2, 3, 4]) await get('k-office', `/jobs/${id}`)
    for (const id of [1, 2, 3, 4]) await get('k-billing', `/jobs/${id}`) // hits: no upstream calls
    for (const id of [1, 2]) await get('k-batch', `/customers/${id}`)
    await get('k-batch', '/jobs/9/notes')
    await get('k-billing', '/jobs/1', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' })

    await page.waitForFunction(() => document.querySelector('#top_clients tr[data-client="office"] .calls')?.textContent === '4', undefined, { timeout: 10_000 })
    const rows = await page.$$eval('#top_clients tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)))
    // client, calls (15 min), this window / share, requests, hits, queue waits, 503s; most calls first
    expect(rows).toEqual([
      ['office', '4', '4', '4', '0', '0', '0'],
      ['batch', '3', '3 / 20 (20%)', '3', '0', '0', '0'],
      ['billing', '1', '1', '5', '4', '0', '0'],
    ])
    const routes = await page.$$eval('#top_routes tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)))
    expect(routes).toEqual([
      ['/jobs/{id}', '5'],
      ['/customers/{id}', '2'],
      ['/jobs/{id}/notes', '1'],
    ])
    expect(problems).toEqual([])
  })
})
