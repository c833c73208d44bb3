import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, renameSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config.js'
import { createSimulator } from '../../simulator/app.js'
import { DEMO_TOKEN, startStack, until, type Stack } from '../helpers.js'

const KEYS = 'office:k-office-SECRET,batch:k-batch-SECRET'
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)

describe('the audit of writes', () => {
  let s: Stack | undefined
  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it('AUDIT_LOG gets one JSON line per write, written before the answer arrives; never a body, query, token or key', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'jpp-audit-')), 'audit.log')
    s = await startStack({ env: { AUDIT_LOG: file, PROXY_API_KEYS: KEYS } })
    const send = (key: string | undefined, method: string, path: string, body?: unknown) =>
      fetch(`${s!.url}/api/v3${path}`, {
        method,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      })

    const put = await send('k-office-SECRET', 'PUT', '/jobs/11?private=QUERY-SECRET', { name: 'BODY-SECRET' })
    expect(put.status).toBe(200)
    // the line is there as soon as the answer's headers are: no wait, no poll
    let audit = lines(file)
    expect(audit).toHaveLength(1)
    expect(audit[0]).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      client: 'office',
      method: 'PUT',
      path: '/api/v3/jobs/11',
      status: 200,
      ms: expect.any(Number),
      req: expect.any(String),
    })
    await put.text()

    const post = await send('k-batch-SECRET', 'POST', '/jobs/12/notes', { note: 'BODY-SECRET' })
    expect(post.status).toBeLessThan(300)
    expect((await send(undefined, 'PUT', '/jobs/13', { name: 'x' })).status).toBe(401) // refused: still audited, no client
    expect((await send('k-office-SECRET', 'GET', '/jobs/11')).status).toBe(200) // a read: not audited
    s.sim.inject({ kind: 'status', status: 500, path: '/jobs/14' })
    expect((await send('k-batch-SECRET', 'PUT', '/jobs/14', { name: 'x' })).status).toBe(500)

    audit = lines(file)
    expect(audit.map((l) => [l.client, l.method, l.path, l.status])).toEqual([
      ['office', 'PUT', '/api/v3/jobs/11', 200],
      ['batch', 'POST', '/api/v3/jobs/12/notes', post.status],
      [null, 'PUT', '/api/v3/jobs/13', 401],
      ['batch', 'PUT', '/api/v3/jobs/14', 500],
    ])
    const text = readFileSync(file, 'utf8')
    for (const secret of ['BODY-SECRET', 'QUERY-SECRET', 'k-office-SECRET', 'k-batch-SECRET', DEMO_TOKEN]) expect(text).not.toContain(secret)
    expect(statSync(file).mode & 0o007).toBe(0) // 0640 less the umask: not world-readable
    // the main log does not carry them too
    expect(s.logs.some((l) => l.includes('"audit":true'))).toBe(false)
  })

  it('without AUDIT_LOG the line goes to the main log with "audit":true', async () => {
    s = await startStack({})
    const r = await fetch(`${s.url}/api/v3/jobs/21?q=QUERY-SECRET`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"BODY-SECRET"}' })
    expect(r.status).toBe(200)
    const audit = s.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === true)
    expect(audit).toHaveLength(1)
    expect(audit[0]).toMatchObject({ audit: true, client: 'anonymous', method: 'PUT', path: '/api/v3/jobs/21', status: 200, msg: 'audit' })
    // the request id as on the request's other lines (pino's req serializer would swallow a `req` field)
    expect(audit[0]!.reqId).toMatch(/^req-[0-9a-z]+$/)
    expect(audit[0]).not.toHaveProperty('req')
    expect(JSON.stringify(audit[0])).not.toMatch(/SECRET/)
  })

  it('an AUDIT_LOG that cannot be opened stops the start with one line', () => {
    expect(() => loadConfig({ JOBPROGRESS_TOKEN: 't', AUDIT_LOG: '/nonexistent/dir/audit.log' })).toThrow(ConfigError)
    expect(() => loadConfig({ JOBPROGRESS_TOKEN: 't', AUDIT_LOG: '/nonexistent/dir/audit.log' })).toThrow(/^AUDIT_LOG: cannot open the file for appending \(ENOENT\)$/)
  })

  it('survives log rotation: after SIGHUP the lines go to a new file of the same name', async () => {
    const sim = createSimulator()
    const simUrl = await sim.listen()
    const dir = mkdtempSync(join(tmpdir(), 'jpp-audit-'))
    const file = join(dir, 'audit.log')
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CACHE_DIR: '', JOBPROGRESS_TOKEN: DEMO_TOKEN, JOBPROGRESS_API_URL: simUrl, PORT: '0', AUDIT_LOG: file },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += String(d)))
    try {
      await until(() => /"address":"(http:[^"]+)"/.test(out), 10_000)
      const base = /"address":"(http:[^"]+)"/.exec(out)![1]
      const put = (id: number) => fetch(`${base}/api/v3/jobs/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"n"}' })
      expect((await put(1)).status).toBe(200)
      renameSync(file, file + '.1') // logrotate moves the file...
      expect((await put(2)).status).toBe(200) // ...the proxy still writes to the moved one until told
      child.kill('SIGHUP')
      await until(() => out.includes('AUDIT_LOG reopened'))
      expect((await put(3)).status).toBe(200)
      expect(lines(file + '.1').map((l) => l.path)).toEqual(['/api/v3/jobs/1', '/api/v3/jobs/2'])
      expect(lines(file).map((l) => l.path)).toEqual(['/api/v3/jobs/3'])
      expect(child.exitCode).toBe(null) // SIGHUP is not a shutdown
    } finally {
      child.kill('SIGKILL')
      await sim.close()
    }
  })
})
