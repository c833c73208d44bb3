import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createSimulator } from '../../simulator/app.js'
import { startStack, until } from '../helpers.js'

const jwt = (exp: number) => `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: 't', exp })).toString('base64url')}.c2lnbmF0dXJl`

describe("the token's life", () => {
  it('JOBPROGRESS_TOKEN_FILE is re-read on SIGHUP without dropping a request in flight', async () => {
    const oldToken = jwt(4102444800)
    const newToken = jwt(4102444801)
    const sim = createSimulator({ tokens: [oldToken, newToken] })
    const simUrl = await sim.listen()
    const dir = mkdtempSync(join(tmpdir(), 'jpp-token-'))
    const file = join(dir, 'token')
    writeFileSync(file, oldToken + '\n')
    // one process (node with the tsx loader), so that SIGHUP reaches the server itself
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CACHE_DIR: '', JOBPROGRESS_TOKEN_FILE: file, JOBPROGRESS_API_URL: simUrl, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += String(d)))
    try {
      await until(() => /"address":"(http:[^"]+)"/.test(out), 10_000)
      const base = /"address":"(http:[^"]+)"/.exec(out)![1]
      expect((await fetch(`${base}/api/v3/jobs/1`)).status).toBe(200)
      expect(sim.calls.at(-1)!.authorization).toBe(`Bearer ${oldToken}`)
      sim.inject({ kind: 'delay', path: '/jobs/2', ms: 500 })
      const inflight = fetch(`${base}/api/v3/jobs/2`)
      await until(() => sim.count('/jobs/2') === 1)
      writeFileSync(file, newToken + '\n')
      child.kill('SIGHUP')
      await until(() => out.includes('token re-read from JOBPROGRESS_TOKEN_FILE'))
      expect((await inflight).status).toBe(200)
      expect((await fetch(`${base}/api/v3/jobs/3`)).status).toBe(200)
      expect(sim.calls.at(-1)!.authorization).toBe(`Bearer ${newToken}`)
      expect(out).not.toContain(newToken)
      expect(out).not.toContain(oldToken)
    } finally {
      child.kill('SIGKILL')
      await sim.close()
    }
  })

  it("reads the JWT's exp: status, metric, and a warning from 14 days before", async () => {
    const exp = Math.floor(Date.now() / 1000) + 5 * 86400 + 3600
    const s = await startStack({ env: { JOBPROGRESS_TOKEN: jwt(exp) }, sim: { tokens: [jwt(exp)] } })
    try {
      const status = (await (await fetch(`${s.url}/_proxy/status`)).json()) as { token: { expires_at: string; expires_in_days: number } }
      expect(status.token.expires_in_days).toBe(5)
      expect(status.token.expires_at).toBe(new Date(exp * 1000).toISOString())
      const metrics = await (await fetch(`${s.url}/metrics`)).text()
      expect(metrics).toMatch(new RegExp(`^jobprogress_proxy_token_expiry_timestamp_seconds ${exp}$`, 'm'))
      expect(s.logs.some((l) => l.includes('the JobProgress token expires soon') && l.includes('"daysLeft":5'))).toBe(true)
    } finally {
      await s.close()
    }
  })

  it('no warning for a token far from its expiry, and "unknown" for a token that is not a JWT', async () => {
    const s = await startStack({ env: { JOBPROGRESS_TOKEN: 'opaque-token' }, sim: { tokens: ['opaque-token'] } })
    try {
      const status = (await (await fetch(`${s.url}/_proxy/status`)).json()) as { token: { expires_at: null } }
      expect(status.token.expires_at).toBeNull()
      expect(s.logs.some((l) => l.includes('expires soon'))).toBe(false)
    } finally {
      await s.close()
    }
  })

  it('an upstream 401 reaches the client as it is, is counted, and logged as an error once a minute', async () => {
    const s = await startStack({ sim: { tokens: ['a-different-token'] } })
    try {
      for (const id of [1, 2, 3]) {
        const r = await fetch(`${s.url}/api/v3/jobs/${id}`)
        expect(r.status).toBe(401)
        expect(await r.json()).toEqual({ error: { status_code: 401, message: 'Unauthenticated.' } })
      }
      const errors = s.logs.filter((l) => l.includes('JobProgress answered 401'))
      expect(errors).toHaveLength(1)
      expect(JSON.parse(errors[0]!).level).toBe(50)
      const status = (await (await fetch(`${s.url}/_proxy/status`)).json()) as { upstream: { unauthorized: number; last_unauthorized_at: string } }
      expect(status.upstream.unauthorized).toBe(3)
      expect(status.upstream.last_unauthorized_at).toMatch(/^\d{4}-/)
      expect(await (await fetch(`${s.url}/metrics`)).text()).toMatch(/^jobprogress_proxy_upstream_unauthorized 3$/m)
    } finally {
      await s.close()
    }
  })
})
