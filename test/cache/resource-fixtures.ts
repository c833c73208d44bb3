// Shared steps of the resource-aware cache tests.
import { expect } from 'vitest'
import type { Stack } from '../helpers.js'

export interface Got {
  status: number
  cache: string | null
  cacheStatus: string | null
  etag: string | null
  body: string
}

export async function get(s: Stack, path: string, headers: Record<string, string> = {}): Promise<Got> {
  const r = await fetch(`${s.url}/api/v3${path}`, { headers })
  return { status: r.status, cache: r.headers.get('x-cache'), cacheStatus: r.headers.get('cache-status'), etag: r.headers.get('etag'), body: await r.text() }
}

/** What the simulator answers for this exact request now (not counted as a call). */
export async function truth(s: Stack, path: string): Promise<unknown> {
  const r = await s.sim.render(path)
  return JSON.parse(r.body)
}

/** Pagination links by meaning (path and sorted query), so that origins and parameter order do not matter. */
export function normal(v: unknown): unknown {
  const links = (v as { meta?: { pagination?: { links?: Record<string, string> } } }).meta?.pagination?.links
  if (links) {
    for (const [k, l] of Object.entries(links)) {
      const u = new URL(l)
      const q = [...u.searchParams].map(([a, b]) => `${a}=${b}`).sort()
      links[k] = `${u.pathname}?${q.join('&')}`
    }
  }
  return v
}

/** Asserts the proxy's answer is exactly what the simulator answers (key order included). */
export async function expectTruth(s: Stack, path: string, got: Got): Promise<void> {
  expect(got.status, path).toBe(200)
  expect(JSON.stringify(normal(JSON.parse(got.body))), path).toBe(JSON.stringify(normal(await truth(s, path))))
}

/** Two real pairs (plain and with includes) on /jobs/{id}: projection becomes trusted on that route. */
export async function proveJobs(s: Stack, ids: [number, number] = [1, 2]): Promise<void> {
  for (const id of ids) {
    await get(s, `/jobs/${id}`)
    await get(s, `/jobs/${id}?includes[]=customer`)
  }
  const v = (await (await fetch(`${s.url}/_proxy/status`)).json()) as { cache: { resource: { verified: Record<string, { matched: number }> } } }
  expect(v.cache.resource.verified['/jobs/{id}']?.matched).toBeGreaterThanOrEqual(2)
}

export async function status(s: Stack): Promise<{
  cache: { resource: { stats: Record<string, number>; verified: Record<string, { checked: number; matched: number }>; disabled: Array<{ lever: string; route: string; reason: string }> } }
}> {
  return (await (await fetch(`${s.url}/_proxy/status`)).json()) as never
}
