// npm run demo: the simulator on loopback and the proxy in front of it. No token, no network.
import { createSimulator, DEMO_TOKEN } from '../simulator/app.js'
import { buildApp } from '../src/app.js'
import { ConfigError, loadConfig } from '../src/config.js'

const sim = createSimulator({ rateLimit: 60, rateWindowMs: 60_000 })
const simUrl = await sim.listen(Number(process.env.SIM_PORT ?? 0))
let loaded
try {
  loaded = loadConfig({
    ...process.env,
    JOBPROGRESS_TOKEN: DEMO_TOKEN,
    JOBPROGRESS_TOKEN_FILE: '',
    JOBPROGRESS_API_URL: simUrl,
    // memory-only unless asked: the simulator's port (part of the files' binding) changes every run
    CACHE_DIR: process.env.CACHE_DIR ?? '',
  })
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`demo: configuration error: ${err.message}\n`)
  await sim.close()
  process.exit(1)
}
const app = await buildApp(loaded)
const address = await app.listen({ host: loaded.config.host, port: loaded.config.port })
const base = address.replace('0.0.0.0', '127.0.0.1')
process.stdout.write(`
JobProgress simulator: ${simUrl}
jobprogress-proxy:     ${address}/api/v3   (dashboard ${base}/_proxy/)

Try:
  curl -i '${base}/api/v3/customers?limit=2'
  curl -i '${base}/api/v3/jobs/11?includes[]=address&includes[]=customer'
  curl -s '${base}/_proxy/status'

Ctrl-C stops both.
`)
let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  await app.close()
  await sim.close()
  process.exit(0)
}
const onSignal = () => {
  stop().catch(() => process.exit(1))
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
