// The disk tier's file format (see persist.ts): a header (magic, format version, salted hash of the
// API URL and token), then records: length, CRC-32, type, payload. 'E' an entry (its fields as JSON,
// then the body's raw bytes), 'D' a deletion, 'R' request counts (the warm start's order).
import { crc32 } from 'node:zlib'
import type { Binding } from '../cache-dir.js'
import { FORMAT_VERSION } from '../cache-dir.js'
import { internHeaders, type Entry } from './store.js'

export const MAGIC = Buffer.from('JPPCACHE')
export const HEADER = 8 + 4 + 16 + 32
export const REC = 9
export const T_ENTRY = 0x45
export const T_DELETE = 0x44
export const T_READS = 0x52
export const MAX_RECORD = 1 << 30
/** the CRC-32 of each type byte alone, the start of every record's checksum */
export const TYPE_CRC: Record<number, number> = Object.fromEntries([T_ENTRY, T_DELETE, T_READS].map((t) => [t, crc32(Buffer.of(t))]))

export interface Live {
  e: Entry
  /** where its record starts in the file */
  off: number
  len: number
  crc: number
}

export type Op = { e: Entry } | { del: string }

export interface Encoded {
  bufs: Buffer[]
  len: number
  key: string
  live?: Live
}

export function header(b: Binding): Buffer {
  const h = Buffer.alloc(HEADER)
  MAGIC.copy(h, 0)
  h.writeUInt32LE(FORMAT_VERSION, 8)
  b.salt.copy(h, 12)
  b.hash.copy(h, 28)
  return h
}

export function record(type: number, parts: Buffer[]): { bufs: Buffer[]; len: number; crc: number } {
  const head = Buffer.allocUnsafe(REC)
  let len = 0
  for (const p of parts) len += p.length
  head.writeUInt32LE(len, 0)
  head[8] = type
  let crc = crc32(head.subarray(8))
  for (const p of parts) crc = crc32(p, crc)
  head.writeUInt32LE(crc, 4)
  return { bufs: [head, ...parts], len: REC + len, crc }
}

/** An entry's record: every field but the body as JSON (so new fields persist as they are), then the body. */
export function encodeEntry(e: Entry): { bufs: Buffer[]; len: number; crc: number } {
  const { body, headers, ...meta } = e
  const m = Buffer.from(JSON.stringify(meta))
  // the headers apart: most entries share a few header sets, which a load then parses once each
  const h = Buffer.from(JSON.stringify(headers))
  const lens = Buffer.allocUnsafe(8)
  lens.writeUInt32LE(m.length, 0)
  lens.writeUInt32LE(h.length, 4)
  return record(T_ENTRY, [lens, m, h, body])
}

/** Buffers inside an entry's other fields come back as Buffers. */
export function revive(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
    return Buffer.from((v as { data: number[] }).data)
  }
  return v
}

export function decodeEntry(p: Buffer, headerSets: Map<string, Entry['headers']>): Entry {
  const ml = p.readUInt32LE(0)
  const hl = p.readUInt32LE(4)
  if (8 + ml + hl > p.length) throw new Error('bad entry record')
  const text = p.toString('utf8', 8, 8 + ml)
  const meta = (text.includes('"type":"Buffer"') ? JSON.parse(text, revive) : JSON.parse(text)) as Omit<Entry, 'body' | 'headers'>
  const headersText = p.toString('utf8', 8 + ml, 8 + ml + hl)
  let headers = headerSets.get(headersText)
  if (!headers) {
    const parsed = JSON.parse(headersText) as unknown
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('bad entry headers')
    headers = internHeaders(parsed as Entry['headers'])
    if (headerSets.size < 1000) headerSets.set(headersText, headers)
  }
  if (
    typeof meta.key !== 'string' ||
    typeof meta.path !== 'string' ||
    typeof meta.storedAt !== 'number' ||
    typeof meta.ttlMs !== 'number' ||
    typeof meta.staleMs !== 'number' ||
    typeof meta.size !== 'number' ||
    !Array.isArray(meta.includes)
  ) {
    throw new Error('bad entry fields')
  }
  // an exact-size copy: the read buffer is reused
  const start = 8 + ml + hl
  const body = Buffer.allocUnsafeSlow(p.length - start)
  p.copy(body, 0, start)
  return { ...meta, encoding: meta.encoding ?? 'identity', headers, body } as Entry
}
