import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config.js'

const TSX = join(process.cwd(), 'node_modules/.bin/tsx')

function start(env: Record<string, string>) {
  const r = spawnSync(TSX, ['src/server.ts'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, CACHE_DIR: '', PORT: '0', LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 15_000,
  })
  return { code: r.status, stderr: r.stderr.trim(), lines: r.stderr.trim().split('\n') }
}

describe('configuration is validated once, with one-line errors naming the variable', () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['a missing token', {}, /^jobprogress-proxy: configuration error: JOBPROGRESS_TOKEN: required/],
    ['a non-numeric PORT', { JOBPROGRESS_TOKEN: 't', PORT: 'eighty' }, /PORT: expected a whole number/],
    ['a PORT out of range', { JOBPROGRESS_TOKEN: 't', PORT: '70000' }, /PORT: expected a whole number from 0 to 65535/],
    ['a non-http API URL', { JOBPROGRESS_TOKEN: 't', JOBPROGRESS_API_URL: 'ftp://example.com/api/v3' }, /JOBPROGRESS_API_URL: expected an http\(s\) URL/],
    ['a bad CACHE_RULES entry', { JOBPROGRESS_TOKEN: 't', CACHE_RULES: '/jobs=soon' }, /CACHE_RULES: .*expected <path>=<seconds>/],
    ['a bad LOG_LEVEL', { JOBPROGRESS_TOKEN: 't', LOG_LEVEL: 'loud' }, /LOG_LEVEL: expected one of/],
    ['an unreadable token file', { JOBPROGRESS_TOKEN_FILE: '/nonexistent/token' }, /JOBPROGRESS_TOKEN_FILE: cannot read the file/],
    ['a zero rate limit', { JOBPROGRESS_TOKEN: 't', UPSTREAM_RATE_LIMIT: '0' }, /UPSTREAM_RATE_LIMIT: expected a whole number from 1/],
  ]
  for (const [what, env, message] of cases) {
    it(`exits 1 on ${what}`, () => {
      const r = start(env)
      expect(r.code).toBe(1)
      expect(r.lines).toHaveLength(1)
      expect(r.stderr).toMatch(message)
    })
  }

  it('never echoes a secret in a configuration error', () => {
    const r = start({ JOBPROGRESS_TOKEN: 'tok en-with-space-SECRET1', PROXY_API_KEYS: 'SECRET2' })
    expect(r.code).toBe(1)
    expect(r.stderr).not.toMatch(/SECRET/)
  })

  it('gives the SPEC defaults and a frozen object', () => {
    const { config, token } = loadConfig({ JOBPROGRESS_TOKEN: 'abc' })
    expect(Object.isFrozen(config)).toBe(true)
    expect(config.apiUrl.href).toBe('https://api.jobprogress.com/api/v3')
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      cacheTtlSeconds: 60,
      cacheStaleSeconds: 600,
      cacheMaxBytes: 67108864,
      rateLimit: 60,
      rateWindowMs: 60000,
      maxConcurrent: 4,
      upstreamTimeoutMs: 30000,
      queueMax: 1000,
      queueTimeoutMs: 60000,
      redisUrl: undefined,
      logLevel: 'info',
    })
    expect(token.reveal()).toBe('abc')
    expect(JSON.stringify({ token })).not.toContain('abc')
    expect(String(token)).toBe('[redacted]')
  })

  it('reads the token from JOBPROGRESS_TOKEN_FILE and parses named client keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jpp-'))
    writeFileSync(join(dir, 'token'), 'file-token\n')
    const { config, token } = loadConfig({ JOBPROGRESS_TOKEN_FILE: join(dir, 'token'), PROXY_API_KEYS: 'dash:k1, k2', ADMIN_KEY: 'adm' })
    expect(token.reveal()).toBe('file-token')
    expect(config.clientKeys.map((k) => k.name)).toEqual(['dash', 'client2'])
    expect(config.clientKeys[0]!.key.reveal()).toBe('k1')
    expect(JSON.stringify(config)).not.toMatch(/k1|k2|adm"/)
  })
})
