import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rawGet, rawRequest, startStack, type Stack } from '../helpers.js'

describe('path safety: nothing that could leave /api/v3 is sent upstream', () => {
  let s: Stack
  beforeAll(async () => {
    s = await startStack()
  })
  afterAll(() => s.close())

  const unsafe = [
    '/api/v3/../../x',
    '/api/v3/jobs/../../admin',
    '/api/v3/%2e%2e/x',
    '/api/v3/%2E%2e/%2e%2E/x',
    '/api/v3/.%2e/x',
    '/api/v3/./jobs',
    '/api/v3/jobs/%2e',
    '/api/v3/..%2fx',
    '/api/v3/jobs%2f..%2f..%2fx',
    '/api/v3/..%5cx',
    '/api/v3/..\\x',
    '/api/v3/jobs%00',
    '/api/v3/jobs%0d%0aX-Injected:%201',
    '/api/v3/%zz',
  ]
  for (const path of unsafe) {
    it(`rejects ${JSON.stringify(path)} with a 4xx in the SPEC shape and no upstream call`, async () => {
      const before = s.sim.calls.length
      const res = await rawGet(s.port, path)
      expect([400, 404]).toContain(res.status)
      const body = JSON.parse(res.body) as { error: { status_code: number; code: string; message: string } }
      expect(body.error.status_code).toBe(res.status)
      expect(['BAD_REQUEST', 'NOT_FOUND']).toContain(body.error.code)
      expect(s.sim.calls.length).toBe(before)
    })
  }

  it('rejects the same paths for writes', async () => {
    const before = s.sim.calls.length
    const res = await rawRequest(s.port, 'PUT /api/v3/jobs/%2e%2e/%2e%2e/x HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}')
    expect(res.status).toBe(400)
    expect(s.sim.calls.length).toBe(before)
  })

  it('answers 404 NOT_FOUND for every other route, and sends nothing upstream', async () => {
    const before = s.sim.calls.length
    for (const path of ['/', '/api', '/api/v2/jobs', '/api/v3x/jobs', '/jobs', '/_proxy/nothing']) {
      const res = await fetch(`${s.url}${path}`)
      expect(res.status, path).toBe(404)
      expect(await res.json()).toMatchObject({ error: { status_code: 404, code: 'NOT_FOUND' } })
    }
    expect(s.sim.calls.length).toBe(before)
  })

  it('still forwards ordinary paths with encoded characters', async () => {
    const res = await fetch(`${s.url}/api/v3/jobs?keyword=roof%20%26%20gutters`)
    expect(res.status).toBe(200)
    expect(s.sim.calls.at(-1)!.url).toBe('/api/v3/jobs?keyword=roof%20%26%20gutters')
  })
})
