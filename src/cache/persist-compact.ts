// The file work of the disk tier's log (persist.ts): appends, and the copy of a compaction.
import { fdatasync, read, write, writev, writevSync } from 'node:fs'
import { promisify } from 'node:util'
import type { Entry } from './store.js'
import { HEADER, T_READS, encodeEntry, record, type Live } from './persist-format.js'

const writevAsync = promisify(writev)
const readAsync = promisify(read)
const writeAsync = promisify(write)

/** pause between two 1 MiB steps of a compaction */
const STEP_PAUSE_MS = 20

/** Writes `bufs` at `pos`, 512 buffers a call; a short write throws (ENOSPC). */
export function writeAllSync(fd: number, bufs: Buffer[], pos: number): void {
  for (let i = 0; i < bufs.length;) {
    const chunk = bufs.slice(i, i + 512)
    let want = 0
    for (const b of chunk) want += b.length
    const n = writevSync(fd, chunk, pos)
    if (n !== want) throw Object.assign(new Error('short write'), { code: 'ENOSPC' })
    pos += n
    i += chunk.length
  }
}

/**
 * Writes `head` then the records `keep` (sorted by offset) copied from the file `from` into `fd`,
 * in 1 MiB steps 20 ms apart; with `fresh` (no old file: it failed), the store's entries as new records.
 * Returns the records' new places and the end of what was written.
 */
export async function writeLive(
  fd: number,
  head: Buffer,
  from: number | undefined,
  keep: Live[],
  fresh: (() => Iterable<Entry>) | undefined,
  closed: () => boolean,
): Promise<{ live: Map<string, Live>; pos: number }> {
  const live = new Map<string, Live>()
  await writeAsync(fd, head, 0, HEADER, 0)
  let pos = HEADER
  let buf = Buffer.allocUnsafe(1 << 20)
  // runs of records that follow each other in the old file, at most 1 MiB (or one record) each
  for (let i = 0; i < keep.length;) {
    if (closed()) throw new Error('closing')
    const first = keep[i]!
    let end = first.off + first.len
    let j = i + 1
    while (j < keep.length && keep[j]!.off === end && end + keep[j]!.len - first.off <= buf.length) end += keep[j++]!.len
    const n = end - first.off
    if (n > buf.length) buf = Buffer.allocUnsafe(n)
    const got = await readAsync(from!, buf, 0, n, first.off)
    if (got.bytesRead !== n) throw new Error('the cache file changed under the compaction')
    const put = await writeAsync(fd, buf, 0, n, pos)
    if (put.bytesWritten !== n) throw Object.assign(new Error('short write'), { code: 'ENOSPC' })
    for (let k = i; k < j; k++) {
      const l = keep[k]!
      live.set(l.e.key, { ...l, off: pos + (l.off - first.off) })
    }
    pos += n
    i = j
    await new Promise((r) => setTimeout(r, STEP_PAUSE_MS)) // background work: a share of a core, not all of it
  }
  // entries of the store that are not on disk yet (a failed file) go in as new records
  if (fresh) {
    for (const e of fresh()) {
      const r = encodeEntry(e)
      await writevAsync(fd, r.bufs, pos)
      live.set(e.key, { e, off: pos, len: r.len, crc: r.crc })
      pos += r.len
    }
  }
  return { live, pos }
}

/** The end of a compaction's copy: the request counts as an 'R' record at `pos`, then fdatasync. Returns the new end. */
export async function writeCountsAndSync(fd: number, counts: Array<[string, number]>, pos: number): Promise<number> {
  if (counts.length) {
    const r = record(T_READS, [Buffer.from(JSON.stringify(counts))])
    await writevAsync(fd, r.bufs, pos)
    pos += r.len
  }
  await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())))
  return pos
}
