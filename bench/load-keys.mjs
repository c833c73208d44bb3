// autocannon over N cached keys chosen at random, in its own process: node bench/load-keys.mjs <base> <n> <seconds>
import autocannon from 'autocannon'

const [base, n, seconds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])]
const result = await autocannon({
  url: base,
  connections: 50,
  duration: seconds,
  requests: [
    {
      setupRequest: (req) => {
        const k = Math.floor(Math.random() * n)
        return { ...req, path: `/api/v3/jobs/${1 + (k % 150)}?k=${k}` }
      },
    },
  ],
})
process.stdout.write(JSON.stringify({ rps: result.requests.average, p99: result.latency.p99, non2xx: result.non2xx }))
