import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers.js'

// Debian's chromium (.ci/run installs it); no browser download.
const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

describe.skipIf(!existsSync(CHROMIUM))('the dashboard in headless Chromium', () => {
  let s: Stack
  let browser: Browser
  beforeAll(async () => {
    s = await startStack({ app: { historyIntervalMs: 300 }, env: { UPSTREAM_RATE_LIMIT: '1000' }, sim: { rateLimit: 1000 } })
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  })
  afterAll(async () => {
    await browser?.close()
    await s?.close()
  })

  it('loads from the proxy alone, its figures and charts move after traffic, with no console errors', async () => {
    const page = await browser.newPage()
    const problems: string[] = []
    const external: string[] = []
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text())
    })
    page.on('pageerror', (e) => problems.push(String(e)))
    page.on('request', (r) => {
      if (!r.url().startsWith(s.url)) external.push(r.url())
    })
    await page.goto(`${s.url}/_proxy/`)
    await page.waitForFunction(() => document.getElementById('calls')?.textContent === '0')
    expect(await page.textContent('#budget')).toBe('1000 / 1000')

    for (let i = 1; i <= 8; i++) await fetch(`${s.url}/api/v3/jobs/${i}`)
    for (let i = 1; i <= 8; i++) await fetch(`${s.url}/api/v3/jobs/${i}`)
    s.sim.inject({ kind: 'status', status: 503, path: '/jobs/99' })
    await fetch(`${s.url}/api/v3/jobs/99`)

    await page.waitForFunction(() => document.getElementById('calls')?.textContent === '9', undefined, { timeout: 10_000 })
    expect(await page.textContent('#hit_ratio')).toMatch(/^47\.1%$/) // 8 hits of 17 cacheable requests
    expect(await page.textContent('#budget')).toBe('991 / 1000')
    await page.waitForFunction(() => document.querySelectorAll('#c_rps polyline').length > 0, undefined, { timeout: 10_000 })
    await page.waitForFunction(() => document.getElementById('errors')?.textContent?.includes('/jobs/99'), undefined, { timeout: 10_000 })
    expect(await page.textContent('#errors')).toContain('503')
    expect(problems).toEqual([])
    expect(external).toEqual([])
  })
})
