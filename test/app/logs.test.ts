import { describe, expect, it } from 'vitest'
import { DEMO_TOKEN, startStack } from '../helpers.js'

describe('logs: one JSON line per request, never a secret', () => {
  it('logs method, path (no query), status, ms and cache result once per request', async () => {
    const s = await startStack()
    try {
      await fetch(`${s.url}/api/v3/customers?limit=3&keyword=private-name`)
      await fetch(`${s.url}/api/v3/customers?limit=3&keyword=private-name`)
      const lines = s.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request')
      expect(lines).toHaveLength(2)
      expect(lines[0]).toMatchObject({ method: 'GET', path: '/api/v3/customers', status: 200, cache: 'MISS' })
      expect(lines[1]).toMatchObject({ cache: 'HIT' })
      expect(typeof lines[0]!.ms).toBe('number')
      expect(s.logs.join('\n')).not.toContain('private-name')
    } finally {
      await s.close()
    }
  })

  it('at trace level, through errors of every kind, no token or key appears', async () => {
    const secrets = { token: DEMO_TOKEN, k1: 'client-key-AAAA1111', k2: 'client-key-BBBB2222', admin: 'admin-key-CCCC3333', wrong: 'wrong-key-DDDD4444' }
    const s = await startStack({
      logLevel: 'trace',
      env: { PROXY_API_KEYS: `app:${secrets.k1},${secrets.k2}`, ADMIN_KEY: secrets.admin, UPSTREAM_TIMEOUT_MS: '200' },
    })
    try {
      const auth = { authorization: `Bearer ${secrets.k1}` }
      await fetch(`${s.url}/api/v3/jobs`, { headers: auth })
      await fetch(`${s.url}/api/v3/jobs`, { headers: { 'x-proxy-key': secrets.k2 } })
      await fetch(`${s.url}/api/v3/jobs`, { headers: { authorization: `Bearer ${secrets.wrong}` } })
      await fetch(`${s.url}/api/v3/jobs`)
      await fetch(`${s.url}/api/v3/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"customer_id":1}' })
      s.sim.inject({ kind: 'reset', path: '/jobs/1' })
      await fetch(`${s.url}/api/v3/jobs/1`, { headers: auth })
      s.sim.inject({ kind: 'hang', path: '/jobs/2', ms: 600 })
      await fetch(`${s.url}/api/v3/jobs/2`, { headers: auth })
      await fetch(`${s.url}/_proxy/cache`, { method: 'DELETE', headers: { authorization: `Bearer ${secrets.admin}` } })
      await fetch(`${s.url}/_proxy/cache`, { method: 'DELETE', headers: { authorization: `Bearer ${secrets.wrong}` } })
      const status = await (await fetch(`${s.url}/_proxy/status`)).text()
      const metrics = await (await fetch(`${s.url}/metrics`)).text()
      const everything = [s.logs.join('\n'), status, metrics].join('\n')
      expect(s.logs.length).toBeGreaterThan(10)
      for (const [name, value] of Object.entries(secrets)) expect(everything, name).not.toContain(value)
      // the first characters of the token are not there either (no partial leak)
      expect(everything).not.toContain(DEMO_TOKEN.slice(0, 40))
    } finally {
      await s.close()
    }
  })
})
