// Reproduces the Dockerfile's runtime stage without Docker: package.json + lock, `npm ci --omit=dev`,
// the built dist/, then `node dist/server.js` with HOST=0.0.0.0. Proves the runtime dependencies are declared.
import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createSimulator, DEMO_TOKEN } from '../../simulator/app.js'
import { freePort, until } from '../helpers.js'

describe('the runtime image, reproduced without Docker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jpp-image-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('installs with --omit=dev, starts as node dist/server.js on 0.0.0.0, serves /healthz and a proxied GET', async () => {
    copyFileSync('package.json', join(dir, 'package.json'))
    copyFileSync('package-lock.json', join(dir, 'package-lock.json'))
    execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, stdio: 'ignore', timeout: 180_000 })
    execFileSync(join(process.cwd(), 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist')], { stdio: 'inherit' })
    expect(existsSync(join(dir, 'node_modules/fastify'))).toBe(true)
    expect(existsSync(join(dir, 'node_modules/vitest'))).toBe(false) // no dev dependencies
    expect(existsSync(join(dir, 'node_modules/tsx'))).toBe(false)

    const sim = createSimulator()
    const simUrl = await sim.listen()
    const port = await freePort()
    const child = spawn(process.execPath, ['dist/server.js'], {
      cwd: dir,
      env: { PATH: process.env.PATH, CACHE_DIR: '', HOST: '0.0.0.0', PORT: String(port), JOBPROGRESS_TOKEN: DEMO_TOKEN, JOBPROGRESS_API_URL: simUrl, NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += String(d)))
    child.stderr.on('data', (d) => (out += String(d)))
    const exited = new Promise<number | null>((r) => child.once('exit', r))
    try {
      await until(() => out.includes('jobprogress-proxy listening'), 15_000)
      expect(out).toContain('"host":"0.0.0.0"')
      expect(out).toContain('PROXY_API_KEYS is empty') // the warning for a non-loopback HOST
      const health = await fetch(`http://127.0.0.1:${port}/healthz`)
      expect(await health.json()).toEqual({ status: 'ok' })
      const res = await fetch(`http://127.0.0.1:${port}/api/v3/jobs/3`)
      expect(res.status).toBe(200)
      expect(((await res.json()) as { data: { id: number } }).data.id).toBe(3)
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
    } finally {
      child.kill('SIGKILL')
      await sim.close()
    }
  }, 240_000)
})
