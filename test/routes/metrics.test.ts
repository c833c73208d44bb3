import { describe, expect, it } from 'vitest'
import { startStack } from '../helpers.js'

describe('GET /metrics', () => {
  it('exposes every SPEC metric with its labels, and the default process metrics', async () => {
    const s = await startStack()
    try {
      await fetch(`${s.url}/api/v3/jobs/1`)
      await fetch(`${s.url}/api/v3/jobs/1`)
      await fetch(`${s.url}/api/v3/jobs/1`, { headers: { 'cache-control': 'no-store' } })
      const res = await fetch(`${s.url}/metrics`)
      expect(res.headers.get('content-type')).toMatch(/text\/plain/)
      const text = await res.text()
      expect(text).toMatch(/^jobprogress_proxy_requests_total\{method="GET",status="200"\} 3$/m)
      expect(text).toMatch(/^jobprogress_proxy_cache_requests_total\{result="hit"\} 1$/m)
      expect(text).toMatch(/^jobprogress_proxy_cache_requests_total\{result="miss"\} 1$/m)
      expect(text).toMatch(/^jobprogress_proxy_cache_requests_total\{result="bypass"\} 1$/m)
      expect(text).toMatch(/^jobprogress_proxy_cache_requests_total\{result="stale"\} 0$/m)
      expect(text).toMatch(/^jobprogress_proxy_cache_bytes [1-9]\d*$/m)
      expect(text).toMatch(/^jobprogress_proxy_cache_entries 1$/m)
      expect(text).toMatch(/^jobprogress_proxy_upstream_requests_total\{status="200"\} 2$/m)
      expect(text).toMatch(/^jobprogress_proxy_upstream_throttled_total 0$/m)
      expect(text).toMatch(/^jobprogress_proxy_upstream_duration_seconds_count 2$/m)
      expect(text).toMatch(/^jobprogress_proxy_queue_depth 0$/m)
      expect(text).toMatch(/^jobprogress_proxy_queue_wait_seconds_count 2$/m)
      expect(text).toMatch(/^jobprogress_proxy_upstream_budget_remaining \d+$/m)
      expect(text).toMatch(/^process_resident_memory_bytes \d+/m)
      expect(text).toMatch(/^jobprogress_proxy_resource_requests_total\{resource="jobs",result="hit"\} 1$/m)
      expect(text).not.toMatch(/jobs\/1/) // no raw paths in labels
    } finally {
      await s.close()
    }
  })

  it('keeps resource labels to a fixed list: anything else is "other"', async () => {
    const s = await startStack()
    try {
      await fetch(`${s.url}/api/v3/made-up-${Date.now()}/x`)
      await fetch(`${s.url}/api/v3/customers/1`)
      const text = await (await fetch(`${s.url}/metrics`)).text()
      expect(text).toMatch(/^jobprogress_proxy_resource_requests_total\{resource="other",result="miss"\} 1$/m)
      expect(text).toMatch(/^jobprogress_proxy_resource_requests_total\{resource="customers",result="miss"\} 1$/m)
      expect(text).not.toContain('made-up')
    } finally {
      await s.close()
    }
  })
})
