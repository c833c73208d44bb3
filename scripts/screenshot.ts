// npm run screenshot: the dashboard in headless Chromium after some traffic -> docs/dashboard.png
import { chromium } from 'playwright-core'
import { startStack, sleep } from '../test/helpers.js'

const s = await startStack({ app: { historyIntervalMs: 1000 }, env: { UPSTREAM_RATE_LIMIT: '30', UPSTREAM_RATE_WINDOW_MS: '10000' }, sim: { rateLimit: 1000 } })
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
await page.goto(`${s.url}/_proxy/`)
const end = Date.now() + 25_000
let i = 0
while (Date.now() < end) {
  const id = 1 + Math.floor(Math.pow(Math.random(), 2) * 40)
  if (i % 40 === 7) s.sim.inject({ kind: 'status', status: 503, path: `/jobs/${id}` })
  void fetch(`${s.url}/api/v3/jobs/${id}${i % 3 ? '' : '?includes[]=address'}`)
    .then((r) => r.arrayBuffer())
    .catch(() => undefined)
  if (i % 25 === 0) void fetch(`${s.url}/api/v3/jobs/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' }).catch(() => undefined)
  i++
  await sleep(40)
}
await sleep(2500)
await page.screenshot({ path: 'docs/dashboard.png', fullPage: true })
await browser.close()
await s.close()
process.exit(0)
