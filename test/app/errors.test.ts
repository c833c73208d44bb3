import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AbortedError, errorBody, isProxyError, PROXY_ERROR_CLASSES, PROXY_ERRORS, type ProxyErrorCode } from '../../src/errors.js'
import { rawRequest, startStack, type Stack } from '../helpers.js'

const classes = PROXY_ERROR_CLASSES

describe('src/errors.ts: one table of codes, a class per thrown code, compared by class', () => {
  it.each(classes.map((E) => [new E('x').code, E] as const))('%s: status and message from the table, the envelope', (code, E) => {
    const err = new E('detail')
    expect(err.statusCode).toBe(PROXY_ERRORS[code].status)
    expect(err).toBeInstanceOf(E)
    expect(isProxyError(err)).toBe(true)
    expect(errorBody(err)).toEqual({ error: { status_code: PROXY_ERRORS[code].status, code, message: err.message } })
    // another class of the table does not claim it
    expect(classes.filter((other) => err instanceof other)).toEqual([E])
  })

  it('each class has its own code; a plain error carrying a proxy code string is not a proxy error', () => {
    const codes = classes.map((E) => new E().code)
    expect(new Set(codes).size).toBe(codes.length)
    for (const c of codes) expect(Object.keys(PROXY_ERRORS)).toContain(c)
    expect(isProxyError(Object.assign(new Error('x'), { code: 'QUEUE_FULL', statusCode: 503 }))).toBe(false)
    expect(isProxyError(new AbortedError('left'))).toBe(false)
  })

  it('docs/contract.md lists every code with its status, and no other', () => {
    const doc = readFileSync(new URL('../../docs/contract.md', import.meta.url), 'utf8')
    const start = doc.indexOf('## Errors made by the proxy')
    const section = doc.slice(start, doc.indexOf('\n## ', start + 1))
    const listed = new Map<string, number>()
    for (const line of section.split('\n')) {
      const m = /^\| (\d{3}) \| (.+?) \|/.exec(line)
      if (!m) continue
      for (const code of m[2].matchAll(/`([A-Z_]+)`/g)) listed.set(code[1], Number(m[1]))
    }
    const table = Object.fromEntries(Object.entries(PROXY_ERRORS).map(([code, { status }]) => [code, status]))
    expect(Object.fromEntries(listed)).toEqual(table)
  })
})

describe('error answers not raised by our own classes take their code from the status', () => {
  let s: Stack
  beforeAll(async () => {
    s = await startStack({ env: { ADMIN_KEY: 'admin-key' } })
  })
  afterAll(() => s.close())

  const envelope = (body: string) => (JSON.parse(body) as { error: { status_code: number; code: ProxyErrorCode; message: string } }).error

  it('a body of a type no route parses -> 415 UNSUPPORTED_MEDIA_TYPE (Fastify raised it)', async () => {
    const res = await rawRequest(
      s.port,
      'DELETE /_proxy/cache HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer admin-key\r\ncontent-type: application/xml\r\ncontent-length: 4\r\nconnection: close\r\n\r\n<a/>',
    )
    expect(res.status).toBe(415)
    expect(envelope(res.body)).toMatchObject({ status_code: 415, code: 'UNSUPPORTED_MEDIA_TYPE' })
  })

  it('malformed percent-encoding the router cannot decode -> 400 BAD_REQUEST saying so (frameworkErrors)', async () => {
    const res = await rawRequest(s.port, 'GET /api/v3/jobs/%E0%A4%A HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n')
    expect(res.status).toBe(400)
    expect(envelope(res.body)).toEqual({ status_code: 400, code: 'BAD_REQUEST', message: 'Malformed percent-encoding in the URL' })
  })

  it('garbage on the socket -> 400 BAD_REQUEST in the envelope, with the reason phrase', async () => {
    const res = await rawRequest(s.port, 'this is not http\r\n\r\n')
    expect(res.status).toBe(400)
    expect(res.raw).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/)
    expect(envelope(res.body)).toMatchObject({ status_code: 400, code: 'BAD_REQUEST' })
  })
})
