// CACHE_DIR's safety: modes, no token on disk, bad files set aside, one writer per directory, and a
// directory or disk that cannot be written is a warning, never a crash.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimulator, DEMO_TOKEN, type Simulator } from '../../simulator/app.js'
import { sleep } from '../helpers.js'
import { get, startChild, startInProcess, tempDir } from './fixtures.js'

const OTHER_TOKEN = 'other-company-token-0123456789'

describe('CACHE_DIR safety', () => {
  let sim: Simulator
  let simUrl: string
  beforeAll(async () => {
    sim = createSimulator({ tokens: [DEMO_TOKEN, OTHER_TOKEN], rateLimit: 1000 })
    simUrl = await sim.listen()
  })
  afterAll(() => sim.close())

  /** a directory holding a cache file with entries, written by a proxy that stopped */
  async function filled(paths = ['/jobs/11', '/customers/3']): Promise<string> {
    const dir = tempDir()
    const p = await startInProcess(simUrl, { CACHE_DIR: dir })
    for (const path of paths) expect((await get(p.url, path)).cache).toBe('MISS')
    await p.close()
    return dir
  }

  it('directory 0700, files 0600; the token and the API URL appear in no file', async () => {
    const dir = await filled()
    const p = await startInProcess(simUrl, { CACHE_DIR: dir })
    try {
      expect((await get(p.url, '/jobs/11')).cache).toBe('HIT')
      await sleep(1200)
      expect(statSync(dir).mode & 0o777).toBe(0o700)
      const files = readdirSync(dir)
      expect(files).toEqual(expect.arrayContaining(['cache.log', 'budget', 'lock']))
      for (const f of files) {
        expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600)
        const bytes = readFileSync(join(dir, f))
        for (const secret of [DEMO_TOKEN, Buffer.from(DEMO_TOKEN).toString('base64'), DEMO_TOKEN.split('.')[2]!, simUrl]) {
          expect(bytes.includes(Buffer.from(secret)), `${f} holds ${secret.slice(0, 12)}...`).toBe(false)
        }
        expect(f.includes(DEMO_TOKEN.slice(0, 16))).toBe(false)
      }
    } finally {
      await p.close()
    }
  })

  it('a wider pre-existing directory is narrowed to 0700', async () => {
    const dir = tempDir()
    mkdirSync(dir, { mode: 0o755 })
    const p = await startInProcess(simUrl, { CACHE_DIR: dir })
    await p.close()
    expect(statSync(dir).mode & 0o777).toBe(0o700)
  })

  const damage: Array<[string, (file: string) => void, string]> = [
    ['garbage', (f) => writeFileSync(f, 'this is not a cache file at all, just text'), 'corrupt'],
    [
      'a flipped byte in a record',
      (f) => {
        const b = readFileSync(f)
        b[b.length - 20] = b[b.length - 20]! ^ 0xff
        writeFileSync(f, b)
      },
      'corrupt',
    ],
    ['cut short', (f) => truncateSync(f, statSync(f).size - 7), 'truncated'],
    [
      'another format version',
      (f) => {
        const b = readFileSync(f)
        b.writeUInt32LE(99, 8)
        writeFileSync(f, b)
      },
      'foreign',
    ],
  ]
  for (const [what, harm, reason] of damage) {
    it(`a cache file with ${what} is set aside (.${reason}) with a warning; the proxy starts empty and serves`, async () => {
      const dir = await filled()
      harm(join(dir, 'cache.log'))
      const p = await startInProcess(simUrl, { CACHE_DIR: dir })
      try {
        expect(p.logs.some((l) => l.includes('"level":40') && l.includes('set aside'))).toBe(true)
        expect(existsSync(join(dir, `cache.log.${reason}`))).toBe(true)
        expect((await get(p.url, '/jobs/11')).cache).toBe('MISS')
        expect((await get(p.url, '/jobs/11')).cache).toBe('HIT')
      } finally {
        await p.close()
      }
      // and the new file is good
      const again = await startInProcess(simUrl, { CACHE_DIR: dir })
      try {
        expect((await get(again.url, '/jobs/11')).cache).toBe('HIT')
      } finally {
        await again.close()
      }
    })
  }

  it('entries of another token are never served (set aside as foreign)', async () => {
    const dir = await filled()
    const p = await startInProcess(simUrl, { CACHE_DIR: dir, JOBPROGRESS_TOKEN: OTHER_TOKEN })
    try {
      expect((await get(p.url, '/jobs/11')).cache).toBe('MISS')
      expect(existsSync(join(dir, 'cache.log.foreign'))).toBe(true)
      expect(existsSync(join(dir, 'budget.foreign'))).toBe(true)
    } finally {
      await p.close()
    }
  })

  it('a corrupt budget file is set aside; the proxy starts with the whole budget', async () => {
    const dir = await filled()
    writeFileSync(join(dir, 'budget'), '{"v":1,"returns":"nope')
    const p = await startInProcess(simUrl, { CACHE_DIR: dir })
    try {
      expect(existsSync(join(dir, 'budget.corrupt'))).toBe(true)
      expect(await p.app.upstream.throttle.budgetLeft()).toBe(60)
      expect((await get(p.url, '/jobs/11')).cache).toBe('HIT')
    } finally {
      await p.close()
    }
  })

  it('a second process on the same directory runs memory-only with a warning and writes nothing', async () => {
    const dir = tempDir()
    const env = { JOBPROGRESS_API_URL: simUrl, CACHE_DIR: dir }
    const a = await startChild(env)
    try {
      expect((await get(a.url, '/jobs/31')).cache).toBe('MISS')
      await sleep(1200)
      const before = readFileSync(join(dir, 'cache.log'))
      const b = await startChild(env)
      try {
        expect(b.logs.some((l) => l.includes('in use by another process') && l.includes(`"pid":${a.child.pid}`))).toBe(true)
        expect((await get(b.url, '/jobs/32')).cache).toBe('MISS') // serves, from memory
        expect((await get(b.url, '/jobs/32')).cache).toBe('HIT')
        await sleep(1200)
      } finally {
        expect(await b.stop()).toBe(0)
      }
      expect(readFileSync(join(dir, 'cache.log')).equals(before)).toBe(true)
      expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')).pid).toBe(a.child.pid)
    } finally {
      await a.stop()
    }
    expect(existsSync(join(dir, 'lock'))).toBe(false) // released on a graceful stop
  })

  it('a stale lock (its process is gone) is taken over', async () => {
    const dir = await filled()
    const dead = execFileSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).trim()
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: Number(dead), host: hostname(), started: new Date().toISOString() }), { mode: 0o600 })
    const p = await startChild({ JOBPROGRESS_API_URL: simUrl, CACHE_DIR: dir })
    try {
      expect(p.logs.some((l) => l.includes('in use by another process'))).toBe(false)
      expect((await get(p.url, '/jobs/11')).cache).toBe('HIT')
      expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')).pid).toBe(p.child.pid)
    } finally {
      await p.stop()
    }
  })

  it('a directory that cannot be created is a warning: memory-only, serving', async () => {
    const file = join(tmpdir(), `jpp-not-a-dir-${process.pid}`)
    writeFileSync(file, 'x')
    const p = await startInProcess(simUrl, { CACHE_DIR: join(file, 'cache') })
    try {
      expect(p.logs.some((l) => l.includes('"level":40') && l.includes('CACHE_DIR cannot be used'))).toBe(true)
      expect((await get(p.url, '/jobs/11')).cache).toBe('MISS')
      expect((await get(p.url, '/jobs/11')).cache).toBe('HIT')
    } finally {
      await p.close()
      rmSync(file)
    }
  })

  const mnt = join(tmpdir(), `jpp-full-${process.pid}`)
  const canMount = (() => {
    if (process.getuid?.() !== 0) return false
    try {
      mkdirSync(mnt, { recursive: true })
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', mnt], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  })()
  afterAll(() => {
    if (canMount) execFileSync('umount', [mnt])
  })

  it.skipIf(!canMount)('a full disk is a warning, never a crash: the file goes, the proxy serves from memory', async () => {
    const dir = join(mnt, 'cache')
    const p = await startInProcess(simUrl, { CACHE_DIR: dir })
    try {
      for (let i = 0; i < 24; i++) expect((await get(p.url, `/jobs?limit=100&includes[]=customer&includes[]=address&n=${i}`)).status).toBe(200) // 110 KB each, ~10 KB gzip at rest
      await sleep(1300)
      expect(p.logs.some((l) => l.includes('"level":40') && l.includes('cannot write the cache file'))).toBe(true)
      expect(existsSync(join(dir, 'cache.log'))).toBe(false)
      for (let i = 0; i < 3; i++) expect((await get(p.url, `/jobs?limit=100&includes[]=customer&includes[]=address&n=${i}`)).cache).toBe('HIT')
      expect((await fetch(`${p.url}/healthz`)).status).toBe(200)
    } finally {
      await p.close()
    }
  })
})
