import pino from 'pino'
import { CacheStore } from './src/cache/store.js'
import { DiskCache } from './src/cache/persist.js'
import { CacheDir } from './src/cache-dir.js'
import { cpSync, rmSync } from 'node:fs'
const src = process.argv[2]!
const dir = '/tmp/prof-copy'
rmSync(dir, { recursive: true, force: true }); cpSync(src, dir, { recursive: true }); rmSync(dir + '/lock', { force: true })
const log = pino({ level: 'warn' })
// binding: read with any token fails; so bypass: matches() patched
const d = CacheDir.open(dir, { apiUrl: new URL('http://x'), token: 't', log })!
;(d as any).matches = () => true
const store = new CacheStore({ maxBytes: 64 * 2 ** 20, now: Date.now })
const disk = new DiskCache({ dir: d, store, maxBytes: 64 * 2 ** 20, now: Date.now, log })
let c0 = process.cpuUsage(); let t = performance.now()
const r = disk.load()
console.log('load', r.entries, (performance.now() - t).toFixed(0), 'ms wall', ((process.cpuUsage(c0).user) / 1000).toFixed(0), 'ms cpu')
for (let i = 0; i < 3; i++) {
  c0 = process.cpuUsage(); t = performance.now()
  let maxGap = 0, last = performance.now()
  const iv = setInterval(() => { const n = performance.now(); maxGap = Math.max(maxGap, n - last); last = n }, 1)
  await disk.compact()
  clearInterval(iv)
  const u = process.cpuUsage(c0)
  console.log('compact', (performance.now() - t).toFixed(0), 'ms wall', (u.user / 1000).toFixed(0), 'ms user', (u.system / 1000).toFixed(0), 'ms sys', 'max loop gap', maxGap.toFixed(1))
}
disk.close(); d.close()
