import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'

// A private CA's certificate for 127.0.0.1, made with the system openssl.
function selfSigned(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'jpp-tls-'))
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
    { stdio: 'ignore' },
  )
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }
}

describe('upstream TLS is verified', () => {
  let server: Server
  let url: string
  let cert: Buffer
  const seen: Array<string | undefined> = []
  beforeAll(async () => {
    const pair = selfSigned()
    cert = pair.cert
    server = createServer(pair, (req, res) => {
      seen.push(req.headers.authorization)
      res.setHeader('content-type', 'application/json')
      res.end('{"data":[],"status":200}')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `https://127.0.0.1:${(server.address() as { port: number }).port}/api/v3`
  })
  afterAll(() => new Promise((r) => server.close(r)))

  it('an untrusted certificate -> 502 UPSTREAM_UNREACHABLE and the token is never sent', async () => {
    const loaded = loadConfig({ JOBPROGRESS_TOKEN: 'tls-secret-token', JOBPROGRESS_API_URL: url, LOG_LEVEL: 'silent', CACHE_DIR: '' })
    const app = await buildApp(loaded)
    try {
      const res = await app.inject({ url: '/api/v3/jobs' })
      expect(res.statusCode).toBe(502)
      expect(res.json()).toMatchObject({ error: { code: 'UPSTREAM_UNREACHABLE' } })
      expect(res.body).toMatch(/certificate/)
      expect(seen).toHaveLength(0)
    } finally {
      await app.close()
    }
  })

  it('a trusted CA (as NODE_EXTRA_CA_CERTS would give) -> the answer, with the token', async () => {
    const loaded = loadConfig({ JOBPROGRESS_TOKEN: 'tls-secret-token', JOBPROGRESS_API_URL: url, LOG_LEVEL: 'silent', CACHE_DIR: '' })
    const app = await buildApp({ ...loaded, connect: { ca: cert } })
    try {
      const res = await app.inject({ url: '/api/v3/jobs' })
      expect(res.statusCode).toBe(200)
      expect(seen).toEqual(['Bearer tls-secret-token'])
    } finally {
      await app.close()
    }
  })
})
