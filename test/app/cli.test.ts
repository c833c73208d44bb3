import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DEFAULTS } from '../../src/config.js'
import { until } from '../helpers.js'

const TSX = join(process.cwd(), 'node_modules/.bin/tsx')
const SPEC_VARIABLES = [
  'JOBPROGRESS_TOKEN',
  'JOBPROGRESS_TOKEN_FILE',
  'JOBPROGRESS_API_URL',
  'HOST',
  'PORT',
  'PROXY_API_KEYS',
  'ADMIN_KEY',
  'CACHE_TTL_SECONDS',
  'CACHE_STALE_SECONDS',
  'CACHE_MAX_BYTES',
  'CACHE_RULES',
  'UPSTREAM_RATE_LIMIT',
  'UPSTREAM_RATE_WINDOW_MS',
  'UPSTREAM_MAX_CONCURRENT',
  'UPSTREAM_TIMEOUT_MS',
  'QUEUE_MAX',
  'QUEUE_TIMEOUT_MS',
  'REDIS_URL',
  'LOG_LEVEL',
]

describe('the jobprogress-proxy command', () => {
  it('--help lists every setting with its flag, variable and default', () => {
    const r = spawnSync(TSX, ['src/cli.ts', '--help'], { encoding: 'utf8' })
    expect(r.status).toBe(0)
    for (const v of SPEC_VARIABLES) {
      const flag = '--' + v.toLowerCase().replace(/_/g, '-')
      const line = r.stdout.split('\n').find((l) => l.includes(` ${v} `))
      expect(line, v).toBeDefined()
      expect(line).toContain(flag)
      const def = (DEFAULTS as Record<string, string>)[v]
      if (def !== undefined) expect(line).toContain(`(default ${def})`)
    }
  })

  it('--version prints the version', () => {
    const r = spawnSync(TSX, ['src/cli.ts', '--version'], { encoding: 'utf8' })
    expect(r.status).toBe(0)
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
    expect(r.stdout.trim()).toBe((JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version)
  })

  it('an unknown flag exits 1 with one line', () => {
    const r = spawnSync(TSX, ['src/cli.ts', '--colour', 'red'], { encoding: 'utf8' })
    expect(r.status).toBe(1)
    expect(r.stderr.trim()).toBe('jobprogress-proxy: unknown argument --colour (see --help)')
  })

  it('flags override the environment', async () => {
    const child = spawn(TSX, ['src/cli.ts', '--port', '0', '--log-level=info', '--upstream-rate-limit', '7'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CACHE_DIR: '', JOBPROGRESS_TOKEN: 't', PORT: '1', LOG_LEVEL: 'silent', UPSTREAM_RATE_LIMIT: '60' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: tsx runs the CLI in a child process, which must go too
    })
    let out = ''
    child.stdout.on('data', (d) => (out += String(d)))
    try {
      await until(() => /"address":"(http:[^"]+)"/.test(out), 10_000) // LOG_LEVEL=silent would print nothing
      const base = /"address":"(http:[^"]+)"/.exec(out)![1]
      const status = (await (await fetch(`${base}/_proxy/status`)).json()) as { upstream: { budget_limit: number } }
      expect(status.upstream.budget_limit).toBe(7)
    } finally {
      process.kill(-child.pid!, 'SIGKILL')
    }
  })
})
