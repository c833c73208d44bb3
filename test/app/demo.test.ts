import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { sleep, until } from '../helpers.js'

describe('npm run demo', () => {
  it('starts the simulator and the proxy, prints both URLs and curl examples, serves, stops on Ctrl-C', async () => {
    const child = spawn('npm', ['run', 'demo'], {
      env: { ...process.env, PORT: '0', LOG_LEVEL: 'warn', CACHE_DIR: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let out = ''
    child.stdout.on('data', (d) => (out += String(d)))
    child.stderr.on('data', (d) => (out += String(d)))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    try {
      await until(() => /Ctrl-C stops both/.test(out), 15_000)
      expect(out).toMatch(/JobProgress simulator: http:\/\/127\.0\.0\.1:\d+\/api\/v3/)
      expect(out).toMatch(/curl -i 'http:\/\/127\.0\.0\.1:\d+\/api\/v3\/customers\?limit=2'/)
      const proxy = /jobprogress-proxy:\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]
      const res = await fetch(`${proxy}/api/v3/customers?limit=2`)
      expect(res.status).toBe(200)
      expect(((await res.json()) as { data: unknown[] }).data).toHaveLength(2)
      process.kill(-child.pid!, 'SIGINT')
      const outcome = await Promise.race([exited.then(() => 'stopped'), sleep(8000).then(() => 'still running')])
      expect(outcome).toBe('stopped')
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  })
})
