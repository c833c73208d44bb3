// N concurrent GETs of one URL from their own process; prints when each answer was read (ms, wall clock).
const [url, n] = [process.argv[2], Number(process.argv[3])]
const done = await Promise.all(
  Array.from({ length: n }, async () => {
    const r = await fetch(url)
    await r.arrayBuffer()
    return performance.timeOrigin + performance.now()
  }),
)
process.stdout.write(JSON.stringify(done))
